"""Bulk operations: one ordinary, atomic service call per user; a user who moved meanwhile is
skipped; an error stops the walk and says whom it changed."""

import time
import zlib

import pytest

from stealth_sessions import signals
from stealth_sessions.context import origin
from stealth_sessions.exceptions import (
    BulkOperationFailed,
    InvalidCursor,
    InvalidSlug,
    InvalidStateTransition,
    InvalidUserId,
)


@pytest.fixture
def crowd(service):
    for i in range(7):
        service.step_to(f"c{i}", slug="hello->ask_name")
        time.sleep(0.002)  # one millisecond each: "newest first" is c6 to c0
    service.step_to("other", slug="goodbye->say_bye")
    return service


def test_reset_many_resets_those_with_a_session(crowd, record):
    reset = record(signals.session_reset)
    outcome = crowd.reset_many(["c0", "c1", "nobody"])
    assert (outcome.user_ids, outcome.skipped) == (("c0", "c1"), 1)
    assert [c["user_id"] for c in reset.calls] == ["c0", "c1"]


def test_reset_many_checks_every_id_before_writing(crowd):
    with pytest.raises(InvalidUserId):
        crowd.reset_many(["c0", "bad id"])
    assert crowd.peek("c0") is not None


def test_reset_state_resets_everyone_there_and_only_them(crowd, monkeypatch):
    monkeypatch.setattr("stealth_sessions.bulk.BATCH", 3)  # several pages
    outcome = crowd.reset_state("hello->ask_name")
    assert sorted(outcome.user_ids) == [f"c{i}" for i in range(7)]
    assert crowd.count_by_state() == {"goodbye->say_bye": 1}


def test_move_state_moves_everyone_with_history_and_signals(crowd, record):
    post = record(signals.post_transition)
    with origin("ops"):
        outcome = crowd.move_state("hello->ask_name", "hello->get_name")
    assert outcome.changed == 7 and outcome.skipped == 0
    assert crowd.count_by_state() == {"hello->get_name": 7, "goodbye->say_bye": 1}
    assert {c["method"] for c in post.calls} == {"update_session_to"}
    assert {c["run_action"] for c in post.calls} == {False}
    assert crowd.history("c3")[0].origin == "ops"


def test_move_state_with_run_action_steps_to(crowd, record):
    post = record(signals.post_transition)
    crowd.move_state("hello->ask_name", "hello->get_name", run_action=True)
    assert {(c["method"], c["run_action"]) for c in post.calls} == {("step_to", True)}


def _same_shard_pair() -> tuple[str, str]:
    """Two user ids in one shard: the walk reads them in one page, before writing either."""
    seen: dict[int, str] = {}
    for n in range(1000):
        user_id = f"pair{n}"
        shard = zlib.crc32(user_id.encode()) % 64
        if shard in seen:
            return seen[shard], user_id
        seen[shard] = user_id
    raise AssertionError("unreachable: 65 ids fill 64 shards")


def test_a_user_who_moves_after_the_walk_read_them_is_skipped(service, receiver):
    pair = _same_shard_pair()
    for user_id in pair:
        service.step_to(user_id, slug="hello->get_name")
    moved = []

    def move_the_other_first(sender, user_id, **kwargs):
        signals.pre_transition.disconnect(move_the_other_first)
        (other,) = set(pair) - {user_id}
        moved.append(other)
        service.step_to(other, slug="hello->ask_name")  # on its own, as a bot would

    receiver(signals.pre_transition, move_the_other_first)
    outcome = service.move_state("hello->get_name", "goodbye->say_bye")
    assert outcome.user_ids == tuple(set(pair) - set(moved)) and outcome.skipped == 1
    assert service.peek(moved[0]).slug == "hello->ask_name"


@pytest.mark.parametrize(
    "source, target, error",
    [
        ("hello->ask_name", "hello->nope", InvalidStateTransition),
        ("hello->ask_name", "hello->ask_name", InvalidStateTransition),
        ("not a slug", "hello->get_name", InvalidSlug),
    ],
)
def test_move_state_refuses_before_writing(crowd, source, target, error):
    with pytest.raises(error):
        crowd.move_state(source, target)
    assert crowd.count_by_state()["hello->ask_name"] == 7


def test_an_error_stops_the_walk_and_says_whom_it_changed(crowd, receiver):
    seen = []

    def action_fails_on_third(sender, user_id, **kwargs):
        seen.append(user_id)
        if len(seen) == 3:
            raise RuntimeError("boom")

    receiver(signals.post_transition, action_fails_on_third)
    with pytest.raises(BulkOperationFailed) as caught:
        crowd.move_state("hello->ask_name", "hello->get_name", run_action=True)
    # The third user was written before the receiver raised: it counts as changed.
    assert caught.value.outcome.user_ids == tuple(seen)
    assert caught.value.user_id == seen[-1]
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert crowd.count_by_state()["hello->get_name"] == 3


def test_a_refusing_pre_transition_receiver_leaves_its_user_unchanged(crowd, receiver):
    seen = []

    def refuse_c4(sender, user_id, **kwargs):
        seen.append(user_id)
        if user_id == "c4":
            raise PermissionError("not this one")

    receiver(signals.pre_transition, refuse_c4)
    with pytest.raises(BulkOperationFailed) as caught:
        crowd.move_state("hello->ask_name", "hello->get_name")
    assert caught.value.user_id == "c4"
    assert caught.value.outcome.user_ids == tuple(seen[:-1])  # those before c4, not c4
    assert crowd.peek("c4").slug == "hello->ask_name"


def test_walk_state_reads_each_user_at_the_state_once_a_shard_at_a_time(crowd):
    seen, cursor, calls = [], None, 0
    while True:
        page, cursor = crowd.browsing.walk_state("hello->ask_name", cursor, limit=2)
        seen += [listed.session.user_id for listed in page]
        calls += 1
        if cursor is None:
            break
    assert sorted(seen) == [f"c{i}" for i in range(7)]
    assert calls >= 64  # one shard's range (or part of it) a call


def test_walk_state_refuses_a_cursor_it_did_not_give(crowd):
    with pytest.raises(InvalidCursor):
        crowd.browsing.walk_state("hello->ask_name", "bm90IGEgY3Vyc29y")
    with pytest.raises(InvalidSlug):
        crowd.browsing.walk_state("not a slug")
