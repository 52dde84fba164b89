"""Rules 3 to 6: transitions, targets, redirects and back-to, with their signals."""

import pytest

from stealth_sessions import signals
from stealth_sessions.exceptions import (
    InvalidSlug,
    InvalidStateTransition,
    NoBackToSession,
    SessionConflict,
)
from stealth_sessions.service import SessionService, origin
from tests.layout import key


def snapshot(redis_client):
    return {k: redis_client.dump(k) for k in redis_client.scan_iter()}


# -- targets -----------------------------------------------------------------------------


def test_step_to_a_slug(service):
    assert service.step_to("u", slug="hello->ask_name").slug == "hello->ask_name"


def test_step_to_a_flow_lands_on_its_first_state(service):
    assert service.step_to("u", flow="goodbye").slug == "goodbye->say_bye"


def test_step_to_a_flow_and_state(service):
    assert service.step_to("u", flow="hello", state="get_name").slug == "hello->get_name"


def test_step_to_a_state_alone_stays_in_the_current_flow(service):
    service.step_to("u", slug="hello->say_hello")
    assert service.step_to("u", state="get_name").slug == "hello->get_name"


def test_step_to_a_session(service):
    other = service.step_to("other", slug="follow_up->wait")
    assert service.step_to("u", session=other).slug == "follow_up->wait"


def test_a_state_alone_needs_a_session(service):
    with pytest.raises(InvalidStateTransition, match="no session"):
        service.step_to("u", state="get_name")


@pytest.mark.parametrize(
    "target",
    [
        {},
        {"slug": "hello->say_hello", "flow": "hello"},
        {"slug": "a->b", "state": "x"},
        {"session": None, "slug": None},
    ],
)
def test_no_target_or_two_kinds_of_target_is_a_type_error(service, target):
    with pytest.raises(TypeError, match="exactly one target"):
        service.step_to("u", **target)


@pytest.mark.parametrize(
    "target,error",
    [
        ({"slug": "hello->nope"}, InvalidStateTransition),
        ({"slug": "nope->say_hello"}, InvalidStateTransition),
        ({"flow": "nope"}, InvalidStateTransition),
        ({"flow": "hello", "state": "nope"}, InvalidStateTransition),
        ({"slug": "hello"}, InvalidSlug),
        ({"slug": "a->b->c"}, InvalidSlug),
        ({"flow": "hello", "state": "bad name"}, InvalidSlug),
    ],
)
def test_an_invalid_target_is_rejected_before_anything_is_written(
    service, redis_client, record, target, error
):
    service.step_to("u", slug="hello->say_hello")
    before = snapshot(redis_client)
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    with pytest.raises(error):
        service.step_to("u", **target)
    with pytest.raises(error):
        service.update_session_to("u", **target)
    assert snapshot(redis_client) == before
    assert pre.calls == post.calls == []


def test_flow_alone_needs_a_flow_map(settings, service):
    settings.STEALTH_SESSIONS = {}
    from stealth_sessions.service import get_session_service

    unmapped = get_session_service()
    assert unmapped.step_to("u", slug="any->thing").slug == "any->thing"
    with pytest.raises(InvalidStateTransition, match="needs a flow map"):
        unmapped.step_to("u", flow="hello")


# -- step_to and update_session_to -------------------------------------------------------


def test_step_to_keeps_the_previous_slug_and_counts_versions(service):
    service.step_to("u", slug="hello->say_hello")
    session = service.step_to("u", slug="hello->ask_name")
    assert (session.previous, session.version) == ("hello->say_hello", 2)


def test_step_to_sends_pre_and_post_transition_with_run_action(service, record):
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    service.step_to("u", slug="hello->say_hello")
    session = service.step_to("u", slug="hello->ask_name")
    common = {
        "sender": SessionService,
        "user_id": "u",
        "source": "hello->say_hello",
        "target": "hello->ask_name",
        "method": "step_to",
        "run_action": True,
        "data": None,  # a scheduled step's data; None for every other transition
    }
    assert pre.calls[-1] == common
    assert post.calls[-1] == {**common, "session": session}
    assert pre.calls[0]["source"] is None


def test_step_to_the_current_state_writes_nothing_but_runs_the_action_again(
    service, redis_client, record
):
    service.step_to("u", slug="hello->say_hello")
    service.step_to("u", slug="hello->ask_name")
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    session = service.step_to("u", slug="hello->ask_name")
    assert (session.version, session.previous) == (2, "hello->say_hello")
    assert len(service.history("u")) == 2
    assert [c["run_action"] for c in pre.calls + post.calls] == [True, True]
    assert post.calls[0]["source"] == post.calls[0]["target"] == "hello->ask_name"


def test_step_to_the_current_state_without_receivers_writes_nothing(service):
    service.step_to("u", slug="hello->say_hello")
    assert service.step_to("u", slug="hello->say_hello").version == 1
    assert service.get("u").previous is None


def test_update_session_to_moves_without_running_the_action(service, record):
    service.step_to("u", slug="hello->say_hello")
    post = record(signals.post_transition)
    session = service.update_session_to("u", slug="hello->get_name")
    assert (session.slug, session.previous, session.version) == (
        "hello->get_name",
        "hello->say_hello",
        2,
    )
    assert post.calls[0]["method"] == "update_session_to"
    assert post.calls[0]["run_action"] is False


def test_update_session_to_the_current_state_does_nothing_at_all(service, record):
    service.step_to("u", slug="hello->say_hello")
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    session = service.update_session_to("u", slug="hello->say_hello")
    assert session.version == 1
    assert pre.calls == post.calls == []
    assert len(service.history("u")) == 1


def test_history_lists_transitions_newest_first(service):
    service.step_to("u", slug="hello->say_hello")
    service.update_session_to("u", state="ask_name")
    entries = service.history("u")
    assert [(e.source, e.target, e.method) for e in entries] == [
        ("hello->say_hello", "hello->ask_name", "update_session_to"),
        (None, "hello->say_hello", "step_to"),
    ]
    assert entries[0].at.tzinfo is not None
    assert entries[0].at >= entries[1].at
    assert len(service.history("u", limit=1)) == 1


@pytest.mark.parametrize("stored", ["hello->say_hello", 'say "hi"\\', "é->x", "\x01", "<\u2028>"])
def test_history_records_a_source_set_by_hand_as_stored(service, redis_client, stored):
    redis_client.set(key("u"), stored)
    service.step_to("u", slug="goodbye->say_bye")
    assert [(e.source, e.target) for e in service.history("u")] == [(stored, "goodbye->say_bye")]


def test_history_reads_a_source_of_invalid_utf8_leniently(service, redis_client):
    redis_client.set(key("u"), b"\xffhello")
    service.step_to("u", slug="goodbye->say_bye")
    assert service.history("u")[0].source == "\ufffdhello"


def test_history_records_any_origin(service):
    with origin('a "quoted" origin'):
        service.step_to("u", slug="hello->say_hello")
    assert service.history("u")[0].origin == 'a "quoted" origin'


def test_origin_also_decorates_and_nests(service):
    @origin("worker")
    def move(user_id, slug):
        service.step_to(user_id, slug=slug)

    with origin("outer"):
        move("u", "hello->say_hello")
        service.step_to("u", slug="hello->ask_name")
    service.step_to("u", slug="hello->get_name")
    assert [e.origin for e in service.history("u")] == ["code", "outer", "worker"]


def test_history_keeps_history_length_entries(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "HISTORY_LENGTH": 3}
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    for state in ["say_hello", "ask_name", "get_name", "say_hello", "ask_name"]:
        service.step_to("u", flow="hello", state=state)
    assert [e.target for e in service.history("u")] == [
        "hello->ask_name",
        "hello->say_hello",
        "hello->get_name",
    ]


# -- signals: aborting and propagating ---------------------------------------------------


def test_a_pre_transition_receiver_raising_aborts_the_transition(service, receiver):
    service.step_to("u", slug="hello->say_hello")

    def veto(sender, **kwargs):
        raise PermissionError("not now")

    receiver(signals.pre_transition, veto)
    with pytest.raises(PermissionError):
        service.step_to("u", slug="hello->ask_name")
    assert service.get("u").slug == "hello->say_hello"


def test_a_post_transition_receiver_raising_propagates_after_the_write(service, receiver):
    def boom(sender, **kwargs):
        raise RuntimeError("bot crashed")

    receiver(signals.post_transition, boom)
    with pytest.raises(RuntimeError):
        service.step_to("u", slug="hello->ask_name")
    assert service.get("u").slug == "hello->ask_name"


def test_on_enter_runs_when_a_user_enters_the_state_with_run_action(service, action):
    seen = []
    action("follow_up->nudge", lambda **kwargs: seen.append(kwargs))
    session = service.step_to("u", slug="follow_up->nudge")
    service.update_session_to("v", slug="follow_up->nudge")  # no action
    service.step_to("u", slug="follow_up->nudge")  # the action runs again
    assert len(seen) == 2
    assert seen[0] == {
        "user_id": "u",
        "source": None,
        "target": "follow_up->nudge",
        "method": "step_to",
        "run_action": True,
        "session": session,
        "data": None,
    }


def test_on_enter_rejects_a_malformed_slug():
    with pytest.raises(InvalidSlug):
        signals.on_enter("nudge")


# -- redirects ---------------------------------------------------------------------------


def test_stepping_into_a_redirecting_state_lands_on_its_target(service):
    assert service.step_to("u", slug="hello->old_name").slug == "goodbye->say_bye"


def test_redirect_chains_are_followed(service):
    assert service.step_to("u", slug="goodbye->renamed").slug == "goodbye->old_bye"


def test_a_stored_session_on_a_redirecting_state_is_moved_on_get(service, redis_client, record):

    service.step_to("u", slug="hello->say_hello")
    redis_client.set(key("u"), "hello->old_name")
    post = record(signals.post_transition)
    session = service.get("u")
    assert session.slug == "goodbye->say_bye"
    assert session.previous == "hello->old_name"
    assert post.calls[0]["method"] == "redirect"
    assert post.calls[0]["run_action"] is False
    assert service.history("u")[0].method == "redirect"
    assert service.count_by_state() == {"goodbye->say_bye": 1}


# -- back-to -----------------------------------------------------------------------------


def test_set_back_to_writes_only_the_back_to_slot(service, record):
    service.step_to("u", slug="hello->say_hello")
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    session = service.set_back_to("u", slug="hello->ask_name")
    assert (session.slug, session.back_to, session.version) == (
        "hello->say_hello",
        "hello->ask_name",
        2,
    )
    assert pre.calls == post.calls == []
    assert len(service.history("u")) == 1


def test_set_back_to_needs_a_session(service):
    with pytest.raises(InvalidStateTransition, match="no session"):
        service.set_back_to("u", slug="hello->ask_name")


def test_set_back_to_validates_its_target(service):
    service.step_to("u", slug="hello->say_hello")
    with pytest.raises(InvalidStateTransition):
        service.set_back_to("u", slug="hello->nope")
    assert service.get("u").back_to is None


def test_step_back_steps_to_the_back_to_session_and_leaves_it(service, record):
    service.step_to("u", slug="hello->say_hello")
    service.set_back_to("u", slug="hello->ask_name")
    service.step_to("u", slug="goodbye->say_bye")
    post = record(signals.post_transition)
    session = service.step_back("u")
    assert (session.slug, session.previous, session.back_to) == (
        "hello->ask_name",
        "goodbye->say_bye",
        "hello->ask_name",
    )
    assert (post.calls[0]["method"], post.calls[0]["run_action"]) == ("step_back", True)


def test_step_back_follows_redirects(service):
    service.step_to("u", slug="hello->say_hello")
    service.set_back_to("u", slug="goodbye->say_bye")
    from django_redis import get_redis_connection

    get_redis_connection().set(key("u", "back_to"), "goodbye->renamed")
    assert service.step_back("u").slug == "goodbye->old_bye"


def test_step_back_without_a_back_to_session(service):
    with pytest.raises(NoBackToSession):
        service.step_back("u")
    service.step_to("u", slug="hello->say_hello")
    with pytest.raises(NoBackToSession) as info:
        service.step_back("u")
    assert isinstance(info.value, InvalidStateTransition)


# -- optimistic concurrency --------------------------------------------------------------


def test_expected_version_makes_a_write_conditional(service):
    session = service.step_to("u", slug="hello->say_hello", expected_version=0)
    with pytest.raises(SessionConflict) as info:
        service.step_to("u", slug="hello->ask_name", expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert service.step_to("u", slug="hello->ask_name", expected_version=session.version)
    with pytest.raises(SessionConflict):
        service.update_session_to("u", slug="hello->get_name", expected_version=1)
    with pytest.raises(SessionConflict):
        service.set_back_to("u", slug="hello->get_name", expected_version=1)
    with pytest.raises(SessionConflict):
        service.step_back("u", expected_version=1)
    with pytest.raises(SessionConflict):
        service.reset("u", expected_version=1)
    assert service.get("u").version == 2


def test_expected_version_zero_means_only_if_there_is_none(service):
    service.step_to("u", slug="hello->say_hello", expected_version=0)
    with pytest.raises(SessionConflict):
        service.step_to("u", slug="hello->say_hello", expected_version=0)


def test_expected_version_with_a_pre_transition_receiver(service, record):
    record(signals.pre_transition)
    service.step_to("u", slug="hello->say_hello")
    with pytest.raises(SessionConflict):
        service.step_to("u", slug="hello->ask_name", expected_version=0)
