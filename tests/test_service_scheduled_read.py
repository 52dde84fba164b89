"""A session and its pending steps in one round trip: get_with_scheduled() (what the HTTP API
shows), on real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.connection import AbstractConnection

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
    redis_client.set(service.store.keys.user("u1").session, "hello->get_name")
    session, steps = service.get_with_scheduled("u1")
    assert session.slug == "hello->get_name" and session.version == 2
    assert steps == service.scheduled_steps("u1") and len(steps) == 2


def test_get_with_scheduled_follows_a_redirect_like_get(service, redis_client):
    service.step_to("u1", slug="hello->say_hello")
    schedule_two(service, "u1")
    redis_client.set(service.store.keys.user("u1").session, "hello->old_name")
    session, steps = service.get_with_scheduled("u1")
    assert session.slug == "goodbye->say_bye"
    assert len(steps) == 2
