"""A session and its pending steps in one round trip: get_with_scheduled() and the writes'
``scheduled_out=`` (what the HTTP API shows), on real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.connection import AbstractConnection

from stealth_sessions import signals
from stealth_sessions.exceptions import SessionConflict
from stealth_sessions.service import SessionService


@pytest.fixture
def round_trips(monkeypatch) -> Iterator[list[int]]:
    """``[n]``: how many times a request went to Redis (a pipeline counts once)."""
    count = [0]
    send = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        count[0] += 1
        return send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield count


def with_ttl(service: SessionService) -> SessionService:
    return SessionService(
        service.store, flow_map=service.flow_map, ttl=3600, scheduler=service.scheduler
    )


def schedule_two(service: SessionService, user_id: str) -> None:
    service.step_to_in(user_id, 7200, slug="follow_up->nudge")
    service.step_to_in(user_id, 60, slug="goodbye->say_bye", if_unchanged=True)


# -- get_with_scheduled ------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [False, True], ids=["no-expiry", "expiry"])
def test_get_with_scheduled_is_get_and_scheduled_steps_in_one_round_trip(service, round_trips, ttl):
    service = with_ttl(service) if ttl else service
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    expected = (service.get("u1"), service.scheduled_steps("u1"))
    assert [s.target for s in expected[1]] == ["goodbye->say_bye", "follow_up->nudge"]
    service.get_with_scheduled("u1")  # loads the read script, if this path uses it
    round_trips[0] = 0
    assert service.get_with_scheduled("u1") == expected
    assert round_trips[0] == 1


def test_get_with_scheduled_without_steps_gives_an_empty_list(service):
    service.step_to("u1", slug="hello->say_hello")
    assert service.get_with_scheduled("u1") == (service.get("u1"), [])


@pytest.mark.parametrize("ttl", [False, True], ids=["no-expiry", "expiry"])
def test_get_with_scheduled_without_a_session_still_lists_pending_steps(service, ttl):
    service = with_ttl(service) if ttl else service
    assert service.get_with_scheduled("nobody") == (None, [])
    schedule_two(service, "u1")
    session, steps = service.get_with_scheduled("u1")
    assert session is None and steps == service.scheduled_steps("u1") and len(steps) == 2


def test_get_with_scheduled_handles_a_slug_changed_by_hand(service, redis_client):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    redis_client.set(service.store.keys.current("u1"), "hello->get_name")
    session, steps = service.get_with_scheduled("u1")
    assert session.slug == "hello->get_name" and session.version == 2
    assert steps == service.scheduled_steps("u1") and len(steps) == 2


def test_get_with_scheduled_follows_a_redirect_like_get(service, redis_client):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    redis_client.set(service.store.keys.current("u1"), "hello->old_name")
    session, steps = service.get_with_scheduled("u1")
    assert session.slug == "goodbye->say_bye"
    assert len(steps) == 2


# -- writes with scheduled_out ---------------------------------------------------------------


@pytest.mark.parametrize("ttl", [False, True], ids=["no-expiry", "expiry"])
def test_step_to_fills_scheduled_out_in_the_same_round_trip(service, round_trips, ttl):
    service = with_ttl(service) if ttl else service
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    round_trips[0] = 0
    steps: list = []
    session = service.step_to("u1", slug="hello->get_name", scheduled_out=steps)
    assert round_trips[0] == 1
    assert (session.slug, session.version) == ("hello->get_name", 2)
    assert steps == service.scheduled_steps("u1") and len(steps) == 2


def test_every_write_fills_scheduled_out(service):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    pending = service.scheduled_steps("u1")
    writes = [
        lambda out: service.update_session_to("u1", slug="hello->get_name", scheduled_out=out),
        lambda out: service.update_session_to("u1", slug="hello->get_name", scheduled_out=out),
        lambda out: service.step_to("u1", slug="hello->get_name", scheduled_out=out),
        lambda out: service.step_to("u1", state="ask_name", scheduled_out=out),
        lambda out: service.set_back_to("u1", slug="hello->say_hello", scheduled_out=out),
        lambda out: service.set_back_to("u1", state="get_name", scheduled_out=out),
        lambda out: service.step_back("u1", scheduled_out=out),
    ]
    for write in writes:
        out: list = ["stale"]
        write(out)
        assert out == pending


def test_scheduled_out_is_filled_even_when_a_pre_transition_receiver_forces_a_read(service, record):
    record(signals.pre_transition)
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    out: list = []
    service.update_session_to("u1", slug="hello->say_hello", scheduled_out=out)  # a no-op
    assert len(out) == 2
    out = []
    service.step_to("u1", slug="hello->get_name", scheduled_out=out)
    assert len(out) == 2


def test_scheduled_out_includes_steps_an_action_scheduled_after_the_write(service, receiver):
    def nudge(sender, *, user_id, target, **kwargs):
        if target == "hello->ask_name":
            service.step_to_in(user_id, 3600, slug="follow_up->nudge")

    receiver(signals.post_transition, nudge)
    out: list = []
    service.step_to("u1", slug="hello->ask_name", scheduled_out=out)
    assert [s.target for s in out] == ["follow_up->nudge"]
    assert out == service.scheduled_steps("u1")


def test_a_conflict_leaves_scheduled_out_alone(service):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    out: list = ["untouched"]
    with pytest.raises(SessionConflict):
        service.step_to("u1", slug="hello->get_name", expected_version=7, scheduled_out=out)
    with pytest.raises(SessionConflict):
        service.set_back_to("u1", slug="hello->get_name", expected_version=7, scheduled_out=out)
    assert out == ["untouched"]


def test_without_scheduled_out_the_scripts_return_the_plain_row(service):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    store = service.store
    row = store.transition(
        "u1",
        "hello->get_name",
        update=False,
        expected_version=None,
        ttl_ms=None,
        method="step_to",
        history_length=50,
    )
    assert len(row) == 6
    assert len(store.set_back_to("u1", "hello->say_hello", expected_version=None, ttl_ms=None)) == 6
    assert len(store.read("u1", 3_600_000, True)) == 6
