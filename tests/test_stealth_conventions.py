"""Porting a Stealth bot: catch-all levels, and Stealth's conventions for stored data and
states, on real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from stealth_sessions.exceptions import InvalidStateTransition
from stealth_sessions.flows import FlowMap, State
from stealth_sessions.service import get_session_service

from .flows import flow_map

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


# -- catch-all levels ----------------------------------------------------------------------


def test_record_failure_counts_levels_at_the_current_state(service):
    service.step_to("u", slug="hello->ask_name")
    assert service.failure_level("u") == 0
    assert [service.record_failure("u") for _ in range(3)] == [1, 2, 3]
    assert service.failure_level("u") == 3


def test_each_state_has_its_own_counter(service):
    service.step_to("u", slug="hello->ask_name")
    service.record_failure("u")
    service.record_failure("u")
    service.step_to("u", slug="hello->get_name")
    assert service.failure_level("u") == 0
    assert service.record_failure("u") == 1
    service.step_to("u", slug="hello->ask_name")
    assert service.failure_level("u") == 2
    assert service.failure_level("other") == 0


def test_a_counter_lapses_catch_all_ttl_after_its_last_failure(service):
    service.step_to("u", slug="hello->ask_name")
    with time_machine.travel(T0, tick=False):
        service.record_failure("u")
    with time_machine.travel(T0 + timedelta(seconds=899), tick=False):
        assert service.record_failure("u") == 2  # within 15 minutes of the last failure
    with time_machine.travel(T0 + timedelta(seconds=899 + 899), tick=False):
        assert service.failure_level("u") == 2
    with time_machine.travel(T0 + timedelta(seconds=899 + 900), tick=False):
        assert service.failure_level("u") == 0
        assert service.record_failure("u") == 1


def test_catch_all_ttl_is_a_setting(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "CATCH_ALL_TTL": 60}
    service = get_session_service()
    service.step_to("u", slug="hello->ask_name")
    with time_machine.travel(T0, tick=False):
        service.record_failure("u")
    with time_machine.travel(T0 + timedelta(seconds=60), tick=False):
        assert service.failure_level("u") == 0


def test_counters_go_with_reset(service):
    service.step_to("u", slug="hello->ask_name")
    service.record_failure("u")
    service.reset("u")
    service.step_to("u", slug="hello->ask_name")
    assert service.failure_level("u") == 0


def test_record_failure_needs_a_session(service):
    with pytest.raises(InvalidStateTransition, match="no session"):
        service.record_failure("nobody")
    assert service.failure_level("nobody") == 0


def test_retry_target_is_fails_to_else_two_states_back():
    assert flow_map.retry_target("hello->ask_name") == "hello->say_hello"  # fails_to
    assert flow_map.retry_target("hello->get_name") == "hello->ask_name"  # two back
    assert flow_map.retry_target("follow_up->wait") == "follow_up->nudge"  # clamped
    assert flow_map.retry_target("follow_up->nudge") == "follow_up->nudge"
    with pytest.raises(InvalidStateTransition):
        flow_map.retry_target("hello->nope")


def test_a_catch_all_handler_in_two_lines(service):
    """The README's catch-all: retry at the failed state's retry target, give up at 3."""
    service.step_to("u", slug="hello->get_name")

    def catch_all(user_id):
        if service.record_failure(user_id) < 3:
            return service.step_to(user_id, slug=flow_map.retry_target(service.get(user_id).slug))
        return service.step_to(user_id, slug="goodbye->say_bye")

    assert catch_all("u").slug == "hello->ask_name"


# -- Stealth's conventions for stored data ----------------------------------------------------


def test_a_blank_current_slug_is_no_session(service, redis_client):
    keys = service.store.keys.user("u")
    redis_client.set(keys.session, "")
    assert service.get("u") is None and service.peek("u") is None
    assert service.step_to("u", slug="hello->say_hello").previous is None


def test_blank_previous_and_back_to_read_as_none(service, redis_client):
    """A session written by Stealth: the slug, and "" for no previous or back-to."""
    keys = service.store.keys.user("u")
    redis_client.mset({keys.session: "hello->ask_name", keys.previous: "", keys.back_to: ""})
    session = service.get("u")
    assert (session.slug, session.previous, session.back_to) == ("hello->ask_name", None, None)
    assert service.list_sessions(slug="hello->ask_name")[0][0].previous is None
    moved = service.step_to("u", slug="hello->get_name")
    assert (moved.previous, moved.back_to) == ("hello->ask_name", None)


def test_state_alone_keeps_the_stored_flow_when_the_stored_state_was_removed(service):
    service.step_to("u", slug="hello->say_hello")
    redis = service.store.client
    redis.set(service.store.keys.user("u").session, "hello->removed_in_a_deploy")
    assert service.peek("u").flow is None  # not in the flow map any more
    assert service.step_to("u", state="ask_name").slug == "hello->ask_name"


def test_state_alone_still_needs_a_known_flow(service, redis_client):
    redis_client.set(service.store.keys.user("u").session, "gone_flow->some_state")
    with pytest.raises(InvalidStateTransition, match="unusable"):
        service.step_to("u", state="ask_name")


def test_states_compare_by_position_in_their_flow():
    say_hello, ask_name, old_name, get_name = (
        flow_map.state("hello", name) for name in flow_map.states("hello")
    )
    assert say_hello < ask_name < get_name and get_name > say_hello
    assert ask_name <= ask_name and ask_name >= ask_name
    assert sorted([get_name, say_hello, old_name, ask_name]) == [
        say_hello,
        ask_name,
        old_name,
        get_name,
    ]
    assert str(ask_name) == "ask_name" and f"{get_name}" == "get_name"


def test_states_of_two_flows_do_not_compare():
    with pytest.raises(TypeError):
        assert flow_map.state("hello", "say_hello") < flow_map.state("goodbye", "say_bye")
    with pytest.raises(TypeError):
        assert State("a") < State("b")  # not declared in a flow


def test_states_of_a_new_flow_compare_too():
    fm = FlowMap()
    first, second = fm.flow("f", ["first", State("second", fails_to="first")])
    assert first < second and max(second, first) is second
