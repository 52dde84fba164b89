"""The async twins of the service (aget, astep_to...): the same results, exceptions and
signals as the sync methods, on redis.asyncio, on the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import sys
import textwrap
import threading
import time
import weakref
from datetime import timedelta

import pytest
from django.utils import timezone

from botproject.redis_server import RedisServer
from stealth_sessions import signals
from stealth_sessions.exceptions import (
    InvalidSchedule,
    InvalidStateTransition,
    NoBackToSession,
    SessionConflict,
    SessionInterrupted,
    SessionLocked,
    SessionStoreUnavailable,
)
from stealth_sessions.service import get_session_service


@pytest.fixture
async def aservice(service):
    """The configured service; this test's event loop's connections closed at the end."""
    yield service
    await service.aclose()


# -- reading and moving -------------------------------------------------------------------


async def test_aget_and_apeek_answer_as_get_and_peek(aservice):
    assert await aservice.aget("u1") is None and await aservice.apeek("u1") is None
    moved = await aservice.astep_to("u1", slug="hello->say_hello")
    assert await aservice.aget("u1") == aservice.get("u1") == moved
    assert await aservice.apeek("u1") == aservice.peek("u1") == moved


async def test_astep_to_keeps_the_previous_slug_counts_versions_and_records_history(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    session = await aservice.astep_to("u1", flow="goodbye")
    assert (session.slug, session.previous, session.version) == (
        "goodbye->say_bye",
        "hello->say_hello",
        2,
    )
    await aservice.astep_to("u1", state="old_bye")
    history = await aservice.ahistory("u1")
    assert [(t.source, t.target, t.method) for t in history] == [
        ("goodbye->say_bye", "goodbye->old_bye", "step_to"),
        ("hello->say_hello", "goodbye->say_bye", "step_to"),
        (None, "hello->say_hello", "step_to"),
    ]
    assert history == aservice.history("u1")


async def test_astep_to_a_session_and_redirects(aservice):
    source = await aservice.astep_to("u1", slug="hello->old_name")
    assert source.slug == "goodbye->say_bye"
    assert (await aservice.astep_to("u2", session=source)).slug == "goodbye->say_bye"


async def test_astep_to_rejects_what_step_to_rejects_before_writing(aservice):
    with pytest.raises(InvalidStateTransition):
        await aservice.astep_to("u1", slug="hello->nope")
    with pytest.raises(InvalidStateTransition):
        await aservice.astep_to("u1", state="ask_name")  # no session: no current flow
    with pytest.raises(TypeError):
        await aservice.astep_to("u1")
    with pytest.raises(ValueError):
        await aservice.astep_to("", slug="hello->say_hello")
    assert await aservice.apeek("u1") is None


async def test_expected_version_makes_an_async_write_conditional(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    with pytest.raises(SessionConflict) as info:
        await aservice.astep_to("u1", slug="hello->ask_name", expected_version=5)
    assert (info.value.expected, info.value.actual) == (5, 1)
    moved = await aservice.astep_to("u1", slug="hello->ask_name", expected_version=1)
    assert moved.version == 2


async def test_aupdate_session_to_moves_without_running_the_action(aservice, action, record):
    ran = []
    action("hello->ask_name", lambda **kwargs: ran.append(kwargs))
    post = record(signals.post_transition)
    session = await aservice.aupdate_session_to("u1", slug="hello->ask_name")
    assert session.slug == "hello->ask_name" and ran == []
    assert post.calls[0]["run_action"] is False and post.calls[0]["method"] == "update_session_to"
    await aservice.aupdate_session_to("u1", slug="hello->ask_name")
    assert len(post.calls) == 1  # the current state: nothing done


async def test_aset_back_to_then_astep_back(aservice):
    with pytest.raises(InvalidStateTransition):
        await aservice.aset_back_to("u1", slug="hello->say_hello")
    with pytest.raises(NoBackToSession):
        await aservice.astep_back("u1")
    await aservice.astep_to("u1", slug="hello->say_hello")
    await aservice.aset_back_to("u1", state="get_name")
    await aservice.astep_to("u1", slug="goodbye->say_bye")
    back = await aservice.astep_back("u1")
    assert (back.slug, back.back_to) == ("hello->get_name", "hello->get_name")


async def test_areset_removes_the_session_and_sends_session_reset(aservice, record):
    reset = record(signals.session_reset)
    assert await aservice.areset("u1") is False
    await aservice.astep_to("u1", slug="hello->say_hello")
    assert await aservice.areset("u1") is True
    assert await aservice.aget("u1") is None
    assert [c["session"].slug for c in reset.calls] == ["hello->say_hello"]


async def test_a_stored_session_on_a_redirecting_state_is_moved_on_aget(aservice, redis_client):
    await aservice.astep_to("u1", slug="hello->say_hello")
    redis_client.set(aservice.store.keys.user("u1").session, "hello->old_name")
    session = await aservice.aget("u1")
    assert session.slug == "goodbye->say_bye"
    assert (await aservice.ahistory("u1"))[0].method == "redirect"


# -- signals and actions -------------------------------------------------------------------


async def test_signals_are_sent_with_asend_to_async_and_sync_receivers(aservice, receiver, record):
    on_loop = []

    async def async_receiver(sender, **kwargs):
        on_loop.append((kwargs["signal"] is signals.pre_transition, threading.get_ident()))

    receiver(signals.pre_transition, async_receiver)
    receiver(signals.post_transition, async_receiver)
    sync_post = record(signals.post_transition)
    await aservice.astep_to("u1", slug="hello->say_hello")
    assert on_loop == [(True, threading.get_ident()), (False, threading.get_ident())]
    [call] = sync_post.calls
    assert call["target"] == "hello->say_hello" and call["source"] is None
    assert call["method"] == "step_to" and call["run_action"] is True


async def test_a_refusing_async_pre_transition_receiver_aborts_the_write(aservice, receiver):
    async def refuse(sender, **kwargs):
        raise PermissionError("no")

    receiver(signals.pre_transition, refuse)
    with pytest.raises(PermissionError):
        await aservice.astep_to("u1", slug="hello->say_hello")
    assert await aservice.apeek("u1") is None


async def test_an_async_action_is_awaited_on_the_event_loop(aservice, action):
    ran = []

    async def greet(user_id, session, **kwargs):
        await asyncio.sleep(0)
        ran.append((user_id, session.slug, threading.get_ident()))

    action("hello->say_hello", greet)
    await aservice.astep_to("u1", slug="hello->say_hello")
    assert ran == [("u1", "hello->say_hello", threading.get_ident())]


async def test_a_sync_action_runs_from_an_async_transition(aservice, action):
    ran = []
    action("hello->say_hello", lambda user_id, **kwargs: ran.append(user_id))
    await aservice.astep_to("u1", slug="hello->say_hello")
    assert ran == ["u1"]


def test_an_async_action_reached_from_a_sync_transition_is_run(service, action):
    ran = []

    async def greet(user_id, **kwargs):
        ran.append(user_id)

    action("hello->say_hello", greet)
    service.step_to("u1", slug="hello->say_hello")
    assert ran == ["u1"]


# -- many users -------------------------------------------------------------------------------


async def test_counts_pages_and_browsing_match_the_sync_ones(aservice):
    for i in range(7):
        await aservice.astep_to(f"u{i}", slug="hello->say_hello" if i % 2 else "goodbye->say_bye")
    assert await aservice.acount_by_state() == aservice.count_by_state()
    assert (await aservice.acount_by_state())["hello->say_hello"] == 3
    page, cursor = await aservice.alist_sessions(flow="hello", limit=2)
    assert (page, cursor) == aservice.list_sessions(flow="hello", limit=2)
    rest, end = await aservice.alist_sessions(flow="hello", cursor=cursor, limit=2)
    assert end is None and len(page + rest) == 3
    assert await aservice.abrowse(user_id_prefix="u1") == aservice.browse(user_id_prefix="u1")
    [listed], _ = await aservice.abrowse(user_id_prefix="u1")
    assert listed.session.user_id == "u1" and listed.pending_steps == 0


# -- scheduled steps ----------------------------------------------------------------------------


async def test_astep_to_in_and_at_store_steps_listed_and_cancelled_like_the_sync_ones(
    aservice, record
):
    scheduled = record(signals.step_scheduled)
    cancelled = record(signals.scheduled_step_cancelled)
    await aservice.astep_to("u1", slug="hello->say_hello")
    later = await aservice.astep_to_in("u1", timedelta(hours=2), slug="follow_up->nudge")
    soon = await aservice.astep_to_at(
        "u1", timezone.now() + timedelta(hours=1), state="ask_name", if_unchanged=True
    )
    assert (soon.target, soon.source, soon.if_unchanged) == (
        "hello->ask_name",
        "hello->say_hello",
        True,
    )
    assert await aservice.ascheduled_steps("u1") == [soon, later] == aservice.scheduled_steps("u1")
    assert [c["step"] for c in scheduled.calls] == [later, soon]
    assert await aservice.acancel_scheduled("u1", soon.id) == 1
    assert await aservice.acancel_scheduled("u1", soon.id) == 0
    assert await aservice.areset("u1") is True
    assert [c["step"] for c in cancelled.calls] == [soon, later]
    assert await aservice.ascheduled_steps("u1") == []


async def test_aget_with_scheduled_and_the_outcomes_answer_as_the_sync_ones(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    step = await aservice.astep_to_in("u1", 60, slug="follow_up->nudge")
    assert await aservice.aget_with_scheduled("u1") == aservice.get_with_scheduled("u1")
    assert (await aservice.aget_with_scheduled("u1"))[1] == [step]
    await aservice.acancel_scheduled("u1")
    outcomes = await aservice.ascheduled_step_outcomes("u1")
    assert outcomes == aservice.scheduled_step_outcomes("u1")
    assert [(o.step_id, o.outcome) for o in outcomes] == [(step.id, "cancelled")]


async def test_astep_to_in_and_at_keep_data_passed_to_receivers_and_actions_when_fired(
    aservice, record, action
):
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    seen = []
    action("follow_up->nudge", lambda data, **kw: seen.append(data))
    await aservice.astep_to("u1", slug="hello->say_hello")
    later = await aservice.astep_to_in(
        "u1", 3600, slug="follow_up->nudge", data={"target_id": "page-7"}
    )
    due = await aservice.astep_to_at(
        "u1", timezone.now() - timedelta(seconds=1), slug="follow_up->nudge", data={"n": [1]}
    )
    assert later.data == {"target_id": "page-7"} and due.data == {"n": [1]}
    assert await aservice.ascheduled_steps("u1") == [due, later] == aservice.scheduled_steps("u1")
    assert (await aservice.astep_to_in("u1", 60, slug="follow_up->nudge")).data is None
    with pytest.raises(InvalidSchedule):
        await aservice.astep_to_in("u1", 60, slug="follow_up->nudge", data={"x": "y" * 4096})
    assert len(await aservice.ascheduled_steps("u1")) == 3
    assert aservice.run_scheduled_step("u1", due.id) == "applied"
    assert seen == [{"n": [1]}]
    assert pre.calls[-1]["data"] == post.calls[-1]["data"] == {"n": [1]}
    await aservice.astep_to("u1", slug="follow_up->nudge")
    assert seen[-1] is None and post.calls[-1]["data"] is None


async def test_a_step_firing_while_an_alock_holds_the_user_is_retried(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    step = await aservice.astep_to_at(
        "u1", timezone.now() - timedelta(seconds=1), slug="follow_up->nudge"
    )
    async with aservice.alock("u1"):
        # Never the owner, even run inside the owner's task.
        assert aservice.run_scheduled_step("u1", step.id) == "retried"
    assert (await aservice.apeek("u1")).slug == "hello->say_hello"
    assert [s.retries for s in await aservice.ascheduled_steps("u1")] == [1]


async def test_astep_to_in_without_an_engine_stores_nothing(aservice, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map"}
    service = get_session_service()
    with pytest.raises(ImproperlyConfigured):
        await service.astep_to_in("u1", 60, slug="hello->ask_name")
    assert await service.ascheduled_steps("u1") == []
    await service.aclose()


# -- locks ---------------------------------------------------------------------------------------


def in_other_thread(func):
    """``func()`` in a new thread (another owner: it starts with an empty context), its
    result returned or its exception raised here."""
    result = {}

    def run():
        try:
            result["value"] = func()
        except BaseException as exc:  # handed back to the test
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def in_other_task(coro):
    """``coro`` in a new asyncio task with an empty context: another owner (a task created
    the usual way inherits its creator's locks)."""
    return asyncio.create_task(coro, context=contextvars.Context())


async def test_alock_excludes_other_sync_and_async_owners(aservice):
    async def take():
        async with aservice.alock("u1", blocking_timeout=0.1):
            pass

    def take_sync():
        with aservice.lock("u1", blocking_timeout=0.1):
            pass

    async with aservice.alock("u1"):
        assert await aservice.ais_locked("u1") and aservice.is_locked("u1")
        with pytest.raises(SessionLocked):
            await in_other_task(take())
        with pytest.raises(SessionLocked):
            in_other_thread(take_sync)
    assert not await aservice.ais_locked("u1")


async def test_a_sync_lock_excludes_an_alock_of_another_owner(aservice):
    async def take():
        async with aservice.alock("u1", blocking_timeout=0.1):
            pass

    with aservice.lock("u1"):
        with pytest.raises(SessionLocked) as raised:
            await in_other_task(take())
        assert raised.value.lock is not None and raised.value.lock.user_id == "u1"
    await in_other_task(take())  # free again


async def test_alock_is_reentrant_within_its_task(aservice):
    async with aservice.alock("u1"):
        async with aservice.alock("u1", blocking_timeout=0):
            assert await aservice.ais_locked("u1")
        assert await aservice.ais_locked("u1")  # the nested block did not release it
        with aservice.lock("u1", blocking_timeout=0):  # the same owner, sync
            pass
        assert await aservice.ais_locked("u1")
    assert not await aservice.ais_locked("u1")


async def test_under_alock_other_owners_writes_are_interrupted_and_write_nothing(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    await aservice.aset_back_to("u1", slug="hello->say_hello")
    async with aservice.alock("u1"):
        moved = await aservice.astep_to("u1", slug="hello->ask_name")  # the owner writes
        for write in (
            lambda: aservice.astep_to("u1", slug="goodbye->say_bye"),
            lambda: aservice.aupdate_session_to("u1", flow="goodbye"),
            lambda: aservice.aset_back_to("u1", slug="goodbye->say_bye"),
            lambda: aservice.astep_back("u1"),
            lambda: aservice.areset("u1"),
        ):
            with pytest.raises(SessionInterrupted) as raised:
                await in_other_task(write())
            assert raised.value.lock.user_id == "u1" and not raised.value.lock.mine
        with pytest.raises(SessionInterrupted):
            in_other_thread(lambda: aservice.step_to("u1", slug="goodbye->say_bye"))
        assert await aservice.apeek("u1") == moved

        async def child():  # created inside the block: it inherits the lock
            return await aservice.astep_to("u1", state="get_name")

        assert (await asyncio.create_task(child())).slug == "hello->get_name"
    assert (await in_other_task(aservice.astep_to("u1", flow="goodbye"))).version == 5


async def test_acurrent_lock_says_who_holds_it_as_current_lock_does(aservice):
    assert await aservice.acurrent_lock("u1") is None
    await aservice.astep_to("u1", slug="hello->ask_name")
    async with aservice.alock("u1", timeout=10):
        lock = await aservice.acurrent_lock("u1")
        assert lock.mine and lock.user_id == "u1" and lock.slug == "hello->ask_name"
        assert asyncio.current_task().get_name() in lock.holder
        assert 8 < (lock.until - lock.since).total_seconds() <= 11
        assert (await in_other_task(aservice.acurrent_lock("u1"))).mine is False
        assert in_other_thread(lambda: aservice.current_lock("u1")).mine is False
        assert aservice.current_lock("u1").mine  # the sync read, in the same task
    assert await aservice.acurrent_lock("u1") is None


async def test_arecord_failure_and_afailure_level_count_as_the_sync_ones(aservice):
    with pytest.raises(InvalidStateTransition):
        await aservice.arecord_failure("u1")  # no session: nothing counted
    assert await aservice.afailure_level("u1") == 0
    await aservice.astep_to("u1", slug="hello->ask_name")
    assert [await aservice.arecord_failure("u1") for _ in range(2)] == [1, 2]
    assert aservice.record_failure("u1") == 3
    assert await aservice.afailure_level("u1") == aservice.failure_level("u1") == 3
    await aservice.astep_to("u1", slug="hello->get_name")
    assert await aservice.afailure_level("u1") == 0  # each state its own counter
    await aservice.astep_to("u1", slug="hello->ask_name")
    assert await aservice.afailure_level("u1") == 3
    await aservice.areset("u1")
    await aservice.astep_to("u1", slug="hello->ask_name")
    assert await aservice.afailure_level("u1") == 0  # reset removed the counters


async def test_an_alock_that_expired_before_release_raises(aservice):
    with pytest.raises(SessionLocked, match="expired"):
        async with aservice.alock("u1", timeout=0.05):
            await asyncio.sleep(0.2)


# -- concurrency ---------------------------------------------------------------------------------

TOGGLE = {"hello->say_hello": "hello->ask_name", "hello->ask_name": "hello->say_hello"}


async def toggle(service, user_id: str) -> int:
    """One conditional write that moves the user to the other state; retried on conflict.
    Returns how many conflicts it met."""
    conflicts = 0
    while True:
        current = await service.apeek(user_id)
        try:
            await service.astep_to(
                user_id, slug=TOGGLE[current.slug], expected_version=current.version
            )
            return conflicts
        except SessionConflict:
            conflicts += 1


async def test_concurrent_writers_on_one_event_loop_lose_no_write(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    # 20 writers: each conflict costs a retry, so the calls grow as the square of the writers
    conflicts = await asyncio.gather(*(toggle(aservice, "u1") for _ in range(20)))
    assert (await aservice.apeek("u1")).version == 21
    assert sum(conflicts) > 0, "the writers did race"
    assert len(await aservice.ahistory("u1")) == 21  # the first step, and one a writer


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import django
    django.setup()
    from stealth_sessions.service import get_session_service
    from tests.test_async_service import toggle

    async def main():
        service = get_session_service()
        for _ in range(int(sys.argv[1])):
            await asyncio.gather(*(toggle(service, "u1") for _ in range(5)))
        await service.aclose()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_concurrent_async_writers_in_several_processes_lose_no_write(aservice):
    await aservice.astep_to("u1", slug="hello->say_hello")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    writers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, "8", env=env)
        for _ in range(3)
    ]
    await asyncio.gather(*(toggle(aservice, "u1") for _ in range(20)))
    assert [await w.wait() for w in writers] == [0, 0, 0]
    assert (await aservice.apeek("u1")).version == 1 + 20 + 3 * 8 * 5


# -- clients --------------------------------------------------------------------------------------


def test_one_client_per_event_loop(service):
    async def client():
        found = service.store.aclient()[0]
        await service.aget("u1")
        assert service.store.aclient()[0] is found
        await service.aclose()
        return found

    first, second = asyncio.run(client()), asyncio.run(client())
    in_thread = []
    thread = threading.Thread(target=lambda: in_thread.append(asyncio.run(client())))
    thread.start()
    thread.join()
    assert len({id(first), id(second), id(in_thread[0])}) == 3


def test_the_clients_of_loops_that_ended_without_aclose_are_let_go(service):
    # asyncio.run per call, as an async view under WSGI or async_to_sync does, never calls
    # aclose(): the next loop's client drops them, so their connections do not pile up.
    service.step_to("u1", slug="hello->say_hello")
    clients = []

    async def read():
        await service.aget("u1")
        clients.append(weakref.ref(service.store.aclient()[0]))

    for _ in range(5):
        asyncio.run(read())
    gc.collect()
    assert sum(ref() is not None for ref in clients) == 1  # the last loop's, until the next


# -- a stopped or frozen Redis ---------------------------------------------------------------------


@pytest.fixture
def doomed(settings):
    """A service on a Redis server of its own, which the test may stop or freeze."""
    server = RedisServer().start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    yield server, service
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


CALLS = {
    "aget": lambda s: s.aget("u"),
    "apeek": lambda s: s.apeek("u"),
    "astep_to": lambda s: s.astep_to("u", slug="hello->ask_name"),
    "aupdate_session_to": lambda s: s.aupdate_session_to("u", slug="hello->ask_name"),
    "astep_back": lambda s: s.astep_back("u"),
    "aset_back_to": lambda s: s.aset_back_to("u", slug="hello->ask_name"),
    "areset": lambda s: s.areset("u"),
    "ahistory": lambda s: s.ahistory("u"),
    "acount_by_state": lambda s: s.acount_by_state(),
    "alist_sessions": lambda s: s.alist_sessions(),
    "abrowse": lambda s: s.abrowse(user_id_prefix="u"),
    "ascheduled_steps": lambda s: s.ascheduled_steps("u"),
    "acancel_scheduled": lambda s: s.acancel_scheduled("u"),
    "ais_locked": lambda s: s.ais_locked("u"),
}


async def assert_unavailable(call, service, within: float) -> None:
    """The call raises SessionStoreUnavailable in time, and the loop kept running meanwhile."""
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    start = time.monotonic()
    with pytest.raises(SessionStoreUnavailable) as info:
        await call(service)
    took = time.monotonic() - start
    ticker.cancel()
    assert took < within
    assert info.value.__cause__ is not None  # the redis error, chained
    return took, ticks


@pytest.mark.parametrize("name", CALLS)
async def test_a_stopped_redis_raises_session_store_unavailable(doomed, name):
    server, service = doomed
    server.stop()
    await assert_unavailable(CALLS[name], service, within=3)
    await service.aclose()


async def test_a_frozen_redis_raises_within_the_socket_timeout_without_blocking_the_loop(doomed):
    server, service = doomed
    await service.aget("u")  # connected before the freeze
    os.kill(server.process.pid, signal.SIGSTOP)
    for name in ("aget", "astep_to"):
        took, ticks = await assert_unavailable(CALLS[name], service, within=3)
        assert ticks >= took * 100 / 3, "the loop ran other tasks while Redis was silent"
    await service.aclose()


async def test_the_alock_raises_session_store_unavailable_too(doomed):
    server, service = doomed
    server.stop()
    with pytest.raises(SessionStoreUnavailable):
        async with service.alock("u", blocking_timeout=1):
            pass
    await service.aclose()


# -- the async client is built from the cache's settings ----------------------------------------


def _built(settings, cache):
    from stealth_sessions.cluster import async_client_factory

    settings.CACHES = {"default": cache}
    return async_client_factory("default")()


def test_the_async_client_takes_django_redis_options(settings):
    client = _built(
        settings,
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": ["rediss://10.0.0.1:6380/3", "redis://10.0.0.2:6379/3"],
            "OPTIONS": {
                "PASSWORD": "s3cret",
                "SOCKET_CONNECT_TIMEOUT": 1.5,
                "SOCKET_TIMEOUT": 2.5,
                "CONNECTION_POOL_KWARGS": {"max_connections": 7},
            },
        },
    )
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.1", 6380, 3)  # the first
    assert kwargs["password"] == "s3cret"
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.5, 2.5)
    assert "SSL" in pool.connection_class.__name__
    assert pool.max_connections == 7


def test_the_async_client_takes_djangos_redis_cache_options(settings):
    client = _built(
        settings,
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://10.0.0.1:6379/1,redis://10.0.0.2:6379/1",
            "OPTIONS": {"socket_timeout": 3, "db": 2},
        },
    )
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["socket_timeout"]) == ("10.0.0.1", 3)


def test_the_async_client_of_a_cluster_cache_is_an_async_redis_cluster(settings):
    from redis.asyncio.cluster import RedisCluster

    client = _built(
        settings,
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"],
            "OPTIONS": {
                "CLIENT_CLASS": "stealth_sessions.cluster.ClusterClient",
                "PASSWORD": "s3cret",
                "SOCKET_TIMEOUT": 2,
            },
        },
    )
    assert isinstance(client, RedisCluster)
    assert [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()] == [
        ("10.0.0.1", 7000),
        ("10.0.0.2", 7000),
    ]
    assert client.connection_kwargs["password"] == "s3cret"
    assert client.connection_kwargs["socket_timeout"] == 2
    assert client.retry.get_retries() == 2


async def test_more_concurrent_calls_than_connections_wait_for_one(settings):
    cache = dict(settings.CACHES["default"])
    options = dict(cache["OPTIONS"])
    if "CLIENT_CLASS" in options:  # a cluster client's limit is per node, as redis-py's
        options["REDIS_CLIENT_KWARGS"] = {"max_connections": 3}
    else:
        options["CONNECTION_POOL_KWARGS"] = {"max_connections": 3}
    settings.CACHES = {"default": {**cache, "OPTIONS": options}}
    service = get_session_service()
    await service.astep_to("u1", slug="hello->say_hello")
    sessions = await asyncio.gather(*(service.aget("u1") for _ in range(60)))
    assert {s.slug for s in sessions} == {"hello->say_hello"}
    await service.aclose()
