"""Interrupt detection (Stealth's lock, made safe): while one owner holds ``lock(user_id)``,
a write for that user from any other owner raises SessionInterrupted and writes nothing; the
owner, and the actions and receivers it runs, write normally."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stealth_sessions import signals
from stealth_sessions.exceptions import SessionInterrupted, SessionLocked

from .test_lock import in_other_thread

ROOT = Path(__file__).resolve().parent.parent

WRITES = {
    "step_to": lambda s: s.step_to("u1", slug="hello->get_name"),
    "step_to state=": lambda s: s.step_to("u1", state="get_name"),
    "update_session_to": lambda s: s.update_session_to("u1", slug="goodbye->say_bye"),
    "step_back": lambda s: s.step_back("u1"),
    "set_back_to": lambda s: s.set_back_to("u1", slug="hello->say_hello"),
    "reset": lambda s: s.reset("u1"),
}


def snapshot(service, user_id="u1"):
    return service.peek(user_id), service.history(user_id)


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_another_owners_write_is_interrupted_and_writes_nothing(service, write):
    service.step_to("u1", slug="hello->say_hello")
    service.set_back_to("u1", slug="hello->ask_name")
    before = snapshot(service)
    with service.lock("u1"):
        with pytest.raises(SessionInterrupted) as caught:
            in_other_thread(lambda: write(service))
        assert snapshot(service) == before
    assert isinstance(caught.value, SessionLocked)
    assert caught.value.lock.slug == "hello->say_hello" and not caught.value.lock.mine
    write(service)  # released: the same write goes through


def test_the_owners_own_writes_go_through(service):
    service.step_to("u1", slug="hello->say_hello")
    with service.lock("u1"):
        service.step_to("u1", slug="hello->ask_name")
        service.step_to("u1", state="get_name")
        service.set_back_to("u1", slug="hello->say_hello")
        assert service.step_back("u1").slug == "hello->say_hello"
    assert [t.target for t in service.history("u1")][:3] == [
        "hello->say_hello",
        "hello->get_name",
        "hello->ask_name",
    ]


def test_the_owner_writes_with_pre_transition_receivers_too(service, record):
    calls = record(signals.pre_transition)
    with service.lock("u1"):
        service.step_to("u1", slug="hello->ask_name")
    assert [c["target"] for c in calls.calls] == ["hello->ask_name"]


def test_a_pre_transition_receiver_sees_the_other_owners_write_refused(service, receiver):
    receiver(signals.pre_transition, lambda sender, **kw: None)
    service.step_to("u1", slug="hello->say_hello")
    with service.lock("u1"), pytest.raises(SessionInterrupted):
        in_other_thread(lambda: service.step_to("u1", slug="hello->ask_name"))
    assert service.peek("u1").slug == "hello->say_hello"


def test_other_users_are_not_locked(service):
    with service.lock("u1"):
        assert in_other_thread(lambda: service.step_to("u2", slug="hello->ask_name")).version


def test_reads_are_not_interrupted(service):
    service.step_to("u1", slug="hello->ask_name")
    with service.lock("u1"):
        assert in_other_thread(lambda: service.get("u1")).slug == "hello->ask_name"


def test_on_enter_actions_run_by_the_owner_can_step_further(service, action):
    action(
        "hello->ask_name", lambda user_id, **kw: service.step_to(user_id, slug="hello->get_name")
    )
    with service.lock("u1"):
        service.step_to("u1", slug="hello->ask_name")
    assert service.peek("u1").slug == "hello->get_name"
    assert [t.target for t in service.history("u1")] == ["hello->get_name", "hello->ask_name"]


def test_post_transition_receivers_run_by_the_owner_can_step_further(service, receiver):
    def onward(sender, user_id, target, **kw):
        if target == "hello->say_hello":
            service.update_session_to(user_id, slug="hello->ask_name")

    receiver(signals.post_transition, onward)
    with service.lock("u1"):
        service.step_to("u1", slug="hello->say_hello")
    assert service.peek("u1").slug == "hello->ask_name"


def test_a_thread_started_by_the_owner_is_another_owner(service):
    with service.lock("u1"), pytest.raises(SessionInterrupted):
        in_other_thread(lambda: service.step_to("u1", slug="hello->ask_name"))


def test_a_bulk_change_skips_a_locked_user(service):
    service.step_to("u1", slug="hello->ask_name")
    service.step_to("u2", slug="hello->ask_name")
    with service.lock("u1"):
        outcome = in_other_thread(lambda: service.move_state("hello->ask_name", "hello->get_name"))
    assert outcome.user_ids == ("u2",) and outcome.skipped == 1
    assert service.peek("u1").slug == "hello->ask_name"


# -- across processes and asyncio tasks ------------------------------------------------------


def test_a_lock_held_by_another_process_interrupts_this_ones_writes(service):
    service.step_to("u1", slug="hello->say_hello")
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.lock_holder", "hello->get_name"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        word, pid = holder.stdout.readline().split()
        assert word == "locked"
        lock = service.current_lock("u1")
        assert f":{pid}:" in lock.holder and lock.slug == "hello->say_hello" and not lock.mine
        with pytest.raises(SessionInterrupted):
            service.step_to("u1", slug="hello->ask_name")
        with pytest.raises(SessionInterrupted):
            service.reset("u1")
        assert service.peek("u1").version == 1
        out, _ = holder.communicate("go\n", timeout=60)  # the owner's write goes through
        assert holder.returncode == 0 and out.strip() == "2"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert service.peek("u1").slug == "hello->get_name"
    assert service.step_to("u1", slug="hello->ask_name").version == 3


@pytest.mark.slow
def test_no_other_process_writes_while_the_owner_holds_the_lock(settings):
    """Four processes write at random while a fifth takes u1's lock and moves u1 100 times:
    the owner's transitions form one unbroken run in u1's history, and the others were told."""
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "HISTORY_LENGTH": 100_000}
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.lock_holder", "--burst", "100"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_writer", str(seed), "600", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    try:
        writers[0].stdout.readline()  # the writers are writing
        holder.stdin.write("go\n")
        holder.stdin.close()
        out = holder.stdout.read()
        assert holder.wait(timeout=120) == 0
        assert out.strip() == "done"
        rows = []
        for writer in writers:
            lines, _ = writer.communicate(timeout=120)
            assert writer.returncode == 0
            rows += [json.loads(line) for line in lines.splitlines()]
    finally:
        for proc in [holder, *writers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    origins = [t.origin for t in service.history("u1", limit=100_000)[::-1]]
    first = origins.index("owner")
    assert origins[first : first + 100] == ["owner"] * 100  # nobody else wrote meanwhile
    assert origins.count("owner") == 100
    assert any(r[0] == "u1" and r[1] == "interrupted" for r in rows)


def test_ownership_is_per_asyncio_task(service):
    service.step_to("u1", slug="hello->say_hello")

    async def scenario():
        locked, tried = asyncio.Event(), asyncio.Event()
        seen = {}

        async def owner():
            with service.lock("u1"):
                locked.set()
                await tried.wait()  # holds the lock across an await
                seen["owner"] = service.step_to("u1", slug="hello->get_name").slug

        async def other():
            await locked.wait()
            try:
                service.step_to("u1", slug="hello->ask_name")
            except SessionInterrupted as exc:
                seen["other"] = exc.lock.holder
            finally:
                tried.set()

        await asyncio.gather(owner(), other())
        return seen

    # In a thread of its own: an earlier test may have left this thread an event loop.
    seen = in_other_thread(lambda: asyncio.run(scenario()))
    assert seen["owner"] == "hello->get_name"
    assert "Task-" in seen["other"]  # the holder names the owning task
    assert [t.target for t in service.history("u1")] == ["hello->get_name", "hello->say_hello"]
