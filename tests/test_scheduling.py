"""Scheduled steps (step_to_in / step_to_at) on real Redis and real RQ, under a moved clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
import time_machine
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings
from rq.job import Job
from rq.worker import SimpleWorker

from stealth_sessions import signals
from stealth_sessions.exceptions import InvalidSchedule, InvalidStateTransition, SessionConflict
from stealth_sessions.flows import FlowMap
from stealth_sessions.scheduling import jobs
from stealth_sessions.service import get_session_service
from stealth_sessions.values import ScheduledStep

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def drain(at: datetime) -> None:
    """RQ's scheduler, then a burst worker, in this process, with the clock at ``at``."""
    queue = django_rq.get_queue("default")
    with time_machine.travel(at, tick=False):
        SimpleWorker([queue], connection=queue.connection).work(
            burst=True, with_scheduler=True, logging_level="WARNING"
        )


def outcomes(service, user_id):
    return [(o.outcome, o.target) for o in service.scheduled_step_outcomes(user_id)]


@pytest.fixture
def at_t0():
    with time_machine.travel(T0, tick=False):
        yield


# -- scheduling ----------------------------------------------------------------------------


def test_step_to_in_returns_the_pending_step_and_leaves_the_session_alone(service, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 3600, slug="follow_up->nudge", if_unchanged=True)
    assert isinstance(step, ScheduledStep)
    assert (step.user_id, step.target, step.if_unchanged) == ("u1", "follow_up->nudge", True)
    assert step.due == T0 + timedelta(hours=1) and step.created == T0
    assert step.source == "hello->say_hello" and step.method == "step_to_in"
    assert service.get("u1").slug == "hello->say_hello"
    assert service.scheduled_steps("u1") == [step]


def test_a_user_may_have_several_steps_listed_soonest_first(service, at_t0):
    late = service.step_to_in("u1", timedelta(days=1), slug="follow_up->nudge")
    soon = service.step_to_at("u1", T0 + timedelta(minutes=5), flow="goodbye")
    assert soon.target == "goodbye->say_bye" and soon.method == "step_to_at"
    assert service.scheduled_steps("u1") == [soon, late]


def test_targets_are_resolved_and_validated_when_scheduling(service, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    assert service.step_to_in("u1", 5, state="ask_name").target == "hello->ask_name"
    assert service.step_to_in("u1", 5, slug="hello->old_name").target == "goodbye->say_bye"
    with pytest.raises(InvalidStateTransition):
        service.step_to_in("u1", 5, slug="hello->nope")
    with pytest.raises(TypeError):
        service.step_to_in("u1", 5)
    assert len(service.scheduled_steps("u1")) == 2


@pytest.mark.parametrize("delay", [0, -1, timedelta(0), float("nan"), True, "5"])
def test_a_delay_must_be_a_positive_number_of_seconds_or_timedelta(service, delay):
    with pytest.raises(InvalidSchedule) as info:
        service.step_to_in("u1", delay, slug="follow_up->nudge")
    assert isinstance(info.value, ValueError)


def test_a_naive_datetime_is_a_clear_error(service):
    with pytest.raises(InvalidSchedule, match="naive datetime"):
        service.step_to_at("u1", datetime(2030, 1, 1), slug="follow_up->nudge")
    assert service.scheduled_steps("u1") == []


def test_scheduling_and_cancelling_send_signals(service, record, at_t0):
    scheduled = record(signals.step_scheduled)
    cancelled = record(signals.scheduled_step_cancelled)
    a = service.step_to_in("u1", 60, slug="follow_up->nudge")
    b = service.step_to_in("u1", 120, slug="follow_up->wait")
    assert [c["step"] for c in scheduled.calls] == [a, b]
    assert scheduled.calls[0]["user_id"] == "u1"
    assert service.cancel_scheduled("u1", a.id) == 1
    assert service.cancel_scheduled("u1", a.id) == 0
    assert service.cancel_scheduled("u1", "not-a-step-id") == 0
    assert service.scheduled_steps("u1") == [b]
    assert service.cancel_scheduled("u1") == 1
    assert [c["step"] for c in cancelled.calls] == [a, b]
    assert outcomes(service, "u1") == [("cancelled", b.target), ("cancelled", a.target)]


def test_reset_cancels_the_users_steps(service, record, at_t0):
    cancelled = record(signals.scheduled_step_cancelled)
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 60, slug="follow_up->nudge")
    assert service.reset("u1")
    assert service.scheduled_steps("u1") == []
    assert [c["step"] for c in cancelled.calls] == [step]
    drain(T0 + timedelta(hours=1))
    assert service.get("u1") is None


def test_a_reset_that_conflicts_cancels_nothing(service, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 60, slug="follow_up->nudge")
    with pytest.raises(SessionConflict):
        service.reset("u1", expected_version=7)
    assert service.scheduled_steps("u1") == [step]


def test_reset_cancels_the_steps_of_a_user_without_a_session(service, at_t0):
    service.step_to_in("u1", 60, slug="follow_up->nudge")
    assert service.reset("u1") is False
    assert service.scheduled_steps("u1") == []
    assert outcomes(service, "u1") == [("cancelled", "follow_up->nudge")]


def test_pending_steps_have_no_ttl(service, redis_client, at_t0):
    with override_settings(STEALTH_SESSIONS={**settings.STEALTH_SESSIONS, "SESSION_TTL": 60}):
        from stealth_sessions.service import get_session_service

        service = get_session_service()
        service.step_to("u1", slug="hello->say_hello")
        service.step_to_in("u1", 3600, slug="follow_up->nudge")
        keys = service.store.keys.user("u1")
        assert redis_client.pttl(keys.session) > 0
        assert redis_client.pttl(keys.steps) == -1
        assert redis_client.pttl(keys.shard.due) == -1


# -- firing through RQ -------------------------------------------------------------------


def test_nothing_runs_early_and_the_step_runs_once_when_due(service, record, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 90.5, slug="follow_up->nudge")
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    drain(T0 + timedelta(seconds=90))
    assert service.peek("u1").slug == "hello->say_hello" and not post.calls
    drain(step.due)
    assert service.peek("u1").slug == "hello->say_hello"  # RQ rounds to the second: up
    drain(T0 + timedelta(seconds=91))
    assert service.peek("u1").slug == "follow_up->nudge"
    assert [(c["method"], c["run_action"], c["source"]) for c in pre.calls] == [
        ("step_to_in", True, "hello->say_hello")
    ]
    assert [(c["method"], c["target"]) for c in post.calls] == [("step_to_in", "follow_up->nudge")]
    assert service.history("u1")[0].method == "step_to_in"
    assert service.scheduled_steps("u1") == []
    assert outcomes(service, "u1") == [("applied", "follow_up->nudge")]
    drain(T0 + timedelta(days=2))
    assert len(post.calls) == 1


def test_on_enter_actions_run_in_the_worker(service, at_t0, action):
    ran = []
    action("follow_up->wait", lambda user_id, **kw: ran.append(user_id))
    service.step_to_in("u1", 10, slug="follow_up->wait")
    drain(T0 + timedelta(seconds=11))
    assert ran == ["u1"]


def test_a_step_in_the_past_fires_promptly(service, at_t0):
    service.step_to_at("u1", T0 - timedelta(days=1), slug="follow_up->nudge")
    drain(T0)
    assert service.peek("u1").slug == "follow_up->nudge"


def test_duplicate_deliveries_apply_once(service, record, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    for _ in range(3):  # the engine delivering the same step again and again
        service.scheduler.enqueue(step, again=True)
    post = record(signals.post_transition)
    drain(T0 + timedelta(seconds=11))
    assert len(post.calls) == 1
    assert jobs.run_step("u1", step.id) == "gone"
    assert len(service.history("u1")) == 1


def test_a_delivery_after_a_cancel_does_nothing(service, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    service.scheduler.enqueue(step, again=True)  # a copy cancel() cannot know of
    assert service.cancel_scheduled("u1") == 1
    drain(T0 + timedelta(seconds=11))
    assert service.peek("u1") is None
    assert outcomes(service, "u1") == [("cancelled", "follow_up->nudge")]


def test_a_cancel_racing_the_firing_is_decided_by_the_atomic_write(
    service, record, at_t0, receiver
):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")

    def cancel_meanwhile(sender, **kwargs):  # runs between the worker's read and its write
        assert service.cancel_scheduled("u1", step.id) == 1

    record(signals.pre_transition)  # forces the read-then-write path
    receiver(signals.pre_transition, cancel_meanwhile)
    with time_machine.travel(T0 + timedelta(seconds=11), tick=False):
        assert jobs.run_step("u1", step.id) == "gone"
    assert service.peek("u1") is None


def test_cancelling_after_it_fired_cancels_nothing(service, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    drain(T0 + timedelta(seconds=11))
    assert service.cancel_scheduled("u1", step.id) == 0
    assert service.peek("u1").slug == "follow_up->nudge"


def test_if_unchanged_fires_when_the_user_is_still_there(service, at_t0):
    service.step_to("u1", slug="hello->ask_name")
    service.step_to_in("u1", 10, slug="follow_up->nudge", if_unchanged=True)
    drain(T0 + timedelta(seconds=11))
    assert service.peek("u1").slug == "follow_up->nudge"


def test_if_unchanged_is_dropped_when_the_user_moved_on(service, record, at_t0):
    service.step_to("u1", slug="hello->ask_name")
    service.step_to_in("u1", 10, slug="follow_up->nudge", if_unchanged=True)
    service.step_to("u1", slug="hello->get_name")
    post = record(signals.post_transition)
    drain(T0 + timedelta(seconds=11))
    assert service.peek("u1").slug == "hello->get_name" and not post.calls
    assert service.scheduled_steps("u1") == []
    [outcome] = service.scheduled_step_outcomes("u1")
    assert outcome.outcome == "dropped" and "hello->get_name" in outcome.reason


def _expire(service, redis_client, user_id):
    """What Redis does when the session's TTL runs out: the user's slug keys vanish."""
    keys = service.store.keys.user(user_id)
    redis_client.delete(keys.session, keys.previous, keys.back_to)


def test_a_step_for_an_expired_session_starts_a_new_one(service, redis_client, at_t0):
    service.step_to("u1", slug="hello->ask_name")
    service.step_to_in("u1", 10, slug="follow_up->nudge")
    _expire(service, redis_client, "u1")
    drain(T0 + timedelta(seconds=11))
    session = service.peek("u1")
    assert session.slug == "follow_up->nudge" and session.previous is None


def test_an_if_unchanged_step_for_an_expired_session_is_dropped(service, redis_client, at_t0):
    service.step_to("u1", slug="hello->ask_name")
    service.step_to_in("u1", 10, slug="follow_up->nudge", if_unchanged=True)
    _expire(service, redis_client, "u1")
    drain(T0 + timedelta(seconds=11))
    assert service.peek("u1") is None
    assert outcomes(service, "u1") == [("dropped", "follow_up->nudge")]


# The next deploy's flow map: follow_up->wait was removed.
next_deploy = FlowMap()
next_deploy.flow("follow_up", ["nudge"])


def test_a_step_whose_target_was_removed_fails_once_with_the_reason(service, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->wait")
    stealth = {**settings.STEALTH_SESSIONS, "FLOW_MAP": "tests.test_scheduling.next_deploy"}
    with override_settings(STEALTH_SESSIONS=stealth):
        drain(T0 + timedelta(seconds=11))
        [outcome] = get_session_service().scheduled_step_outcomes("u1")
        assert outcome.outcome == "failed" and "Unknown state 'wait'" in outcome.reason
        assert get_session_service().scheduled_steps("u1") == []
        assert get_session_service().peek("u1") is None
        assert jobs.run_step("u1", step.id) == "gone"
        assert get_session_service().sweep_scheduled(0) == 0  # not retried


def test_a_refusing_pre_transition_receiver_fails_the_step(service, at_t0, receiver):
    def refuse(sender, **kwargs):
        raise RuntimeError("not now")

    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    receiver(signals.pre_transition, refuse)
    with time_machine.travel(T0 + timedelta(seconds=11)), pytest.raises(RuntimeError):
        jobs.run_step("u1", step.id)
    [outcome] = service.scheduled_step_outcomes("u1")
    assert outcome.outcome == "failed" and "not now" in outcome.reason
    assert service.scheduled_steps("u1") == []


def test_an_early_delivery_is_handed_back_not_applied(service, at_t0):
    step = service.step_to_in("u1", 60, slug="follow_up->nudge")
    assert jobs.run_step("u1", step.id) == "early"
    assert service.peek("u1") is None and service.scheduled_steps("u1") == [step]
    drain(T0 + timedelta(seconds=61))
    assert service.peek("u1").slug == "follow_up->nudge"


# -- recovery ------------------------------------------------------------------------------


def test_the_sweep_recovers_steps_whose_jobs_the_engine_lost(service, redis_client, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    rq_redis = django_rq.get_connection("default")  # with a cluster, RQ has its own server
    for key in rq_redis.scan_iter("rq:*"):  # RQ's data flushed
        rq_redis.delete(key)
    drain(T0 + timedelta(seconds=11))
    assert service.peek("u1") is None
    with time_machine.travel(step.due + timedelta(seconds=299), tick=False):
        assert jobs.sweep() == 0  # within the grace period: the job may only be late
    with time_machine.travel(step.due + timedelta(seconds=301), tick=False):
        assert jobs.sweep() == 1
        assert jobs.sweep() == 0  # claimed: not handed over twice in one grace period
    drain(step.due + timedelta(seconds=302))
    assert service.peek("u1").slug == "follow_up->nudge"


def test_a_failed_enqueue_keeps_the_step_for_the_sweep(service, monkeypatch, at_t0):
    def broken(step, again=False):
        raise ConnectionError("engine down")

    monkeypatch.setattr(service.scheduler, "enqueue", broken)
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    assert service.scheduled_steps("u1") == [step]
    monkeypatch.undo()
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        assert service.sweep_scheduled(60) == 1
    drain(T0 + timedelta(minutes=10))
    assert service.peek("u1").slug == "follow_up->nudge"


def test_the_sweep_command_hands_over_overdue_steps_once(service, at_t0):
    from io import StringIO

    from django.core.management import call_command

    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    out = StringIO()
    with time_machine.travel(step.due + timedelta(seconds=301), tick=False):
        call_command("stealth_sessions_sweep", stdout=out)
        assert out.getvalue() == "Handed 1 overdue scheduled step(s) to the engine.\n"
        call_command("stealth_sessions_sweep", stdout=out)  # claimed: not handed over again
    assert out.getvalue().count("Handed") == 1
    assert [s.id for s in service.scheduled_steps("u1")] == [step.id]


def test_two_worker_processes_drain_1000_due_steps_once_each(service):
    users = [f"psid-{i:04d}" for i in range(1000)]
    # Scheduled a minute ago for now, so RQ's scheduler in the workers finds them all due.
    with time_machine.travel(datetime.now(UTC) - timedelta(seconds=60), tick=False):
        steps = [service.step_to_in(user, 60, slug="follow_up->nudge") for user in users]
    for step in steps[::10]:  # a tenth of them delivered twice
        service.scheduler.enqueue(step, again=True)
    # SimpleWorker: no fork per job (RQ's default Worker forks, ~60 ms a job here).
    command = [sys.executable, "-m", "django", "rqworker", "default", "--with-scheduler",
               "--worker-class", "rq.worker.SimpleWorker"]  # fmt: skip
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": os.getcwd()}
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(2)]
    queue = django_rq.get_queue("default")
    try:
        deadline = time.monotonic() + 40
        while service.store.pending_steps_count() or queue.count:
            assert time.monotonic() < deadline, "not drained in time"
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
    finished = Job.fetch_many(queue.finished_job_registry.get_job_ids(), queue.connection)
    assert len(finished) == 1100
    assert len({job.worker_name for job in finished}) == 2, "both workers ran steps"
    assert sorted(job.return_value() for job in finished) == ["applied"] * 1000 + ["gone"] * 100
    for user in users:
        assert [t.method for t in service.history(user)] == ["step_to_in"]
        assert outcomes(service, user) == [("applied", "follow_up->nudge")]


# -- system checks ----------------------------------------------------------------------------


def _ids():
    return [m.id for m in run_checks() if m.id.startswith("stealth_sessions.")]


def test_check_a_missing_rq_queue():
    with override_settings(RQ_QUEUES={"other": {"URL": "redis://localhost"}}):
        assert _ids() == ["stealth_sessions.E010"]


def test_check_an_unusable_scheduler_class():
    conf = {"FLOW_MAP": "tests.flows.flow_map", "SCHEDULER": "tests.nowhere.Engine"}
    with override_settings(STEALTH_SESSIONS=conf):
        assert _ids() == ["stealth_sessions.E011"]
    with override_settings(STEALTH_SESSIONS={**conf, "SCHEDULER": "datetime.datetime"}):
        assert _ids() == ["stealth_sessions.E011"]


def test_no_check_message_for_the_default_setup():
    assert _ids() == []


# -- interrupt detection: a step firing while the user is locked -----------------------------


def test_a_step_firing_while_the_user_is_locked_is_retried_then_applied(service, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    with service.lock("u1"):  # the worker runs in this thread: still another owner
        drain(T0 + timedelta(seconds=11))
        assert service.peek("u1").slug == "hello->say_hello"  # never applied mid-action
        [pending] = service.scheduled_steps("u1")
        assert (pending.id, pending.retries) == (step.id, 1)
        drain(T0 + timedelta(seconds=14))  # still locked: retried again
        assert service.scheduled_steps("u1")[0].retries == 2
        assert outcomes(service, "u1") == []
    drain(T0 + timedelta(seconds=17))
    assert service.peek("u1").slug == "follow_up->nudge"
    [outcome] = service.scheduled_step_outcomes("u1")
    assert (outcome.outcome, outcome.retries) == ("applied", 2)
    assert "locked" in outcome.reason


def test_a_step_whose_user_stays_locked_fails_after_the_last_retry(service, settings, at_t0):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "STEP_LOCKED_RETRIES": 1}
    service = get_session_service()
    service.step_to("u1", slug="hello->say_hello")
    service.step_to_in("u1", 10, slug="follow_up->nudge")
    with service.lock("u1"):
        drain(T0 + timedelta(seconds=11))
        drain(T0 + timedelta(seconds=14))
        assert service.scheduled_steps("u1") == []
    drain(T0 + timedelta(seconds=30))
    assert service.peek("u1").slug == "hello->say_hello"
    [outcome] = service.scheduled_step_outcomes("u1")
    assert (outcome.outcome, outcome.retries) == ("failed", 1)
    assert "locked" in outcome.reason


def test_the_lock_owner_may_run_a_due_step_itself_and_it_still_waits(service, at_t0):
    service.step_to("u1", slug="hello->say_hello")
    step = service.step_to_in("u1", 10, slug="follow_up->nudge")
    with service.lock("u1"), time_machine.travel(T0 + timedelta(seconds=11), tick=False):
        assert service.run_scheduled_step("u1", step.id) == "retried"
    assert service.peek("u1").slug == "hello->say_hello"


# -- payloads --------------------------------------------------------------------------------


def test_a_steps_data_is_kept_and_returned(service, at_t0):
    step = service.step_to_in("u1", 10, slug="follow_up->nudge", data={"target_id": "page-7"})
    at = service.step_to_at("u1", T0 + timedelta(hours=1), flow="goodbye", data={"n": [1, 2]})
    assert step.data == {"target_id": "page-7"} and at.data == {"n": [1, 2]}
    assert service.scheduled_steps("u1") == [step, at]
    assert service.step_to_in("u1", 10, slug="follow_up->nudge").data is None
    assert service.step_to_in("u1", 10, slug="follow_up->nudge", data={}).data == {}


@pytest.mark.parametrize(
    "data",
    [
        {"big": "x" * 4096},
        {"when": datetime(2030, 1, 1)},
        {1: "int key"},
        {"nan": float("nan")},
        ["not", "a", "dict"],
        "page-7",
    ],
)
def test_data_must_be_a_small_json_object_else_nothing_is_stored(service, data):
    with pytest.raises(InvalidSchedule):
        service.step_to_in("u1", 10, slug="follow_up->nudge", data=data)
    assert service.scheduled_steps("u1") == []


def test_data_of_up_to_4_kb_is_accepted(service):
    data = {"x": "y" * (4096 - len('{"x":""}'))}
    assert service.step_to_in("u1", 10, slug="follow_up->nudge", data=data).data == data


def test_when_a_step_fires_its_data_goes_to_the_receivers_and_actions(
    service, record, action, at_t0
):
    pre, post = record(signals.pre_transition), record(signals.post_transition)
    seen = []
    action("follow_up->nudge", lambda data, **kw: seen.append(data))
    service.step_to_in("u1", 10, slug="follow_up->nudge", data={"target_id": "page-7"})
    drain(T0 + timedelta(seconds=11))
    assert seen == [{"target_id": "page-7"}]
    assert pre.calls[-1]["data"] == post.calls[-1]["data"] == {"target_id": "page-7"}
    service.step_to("u1", slug="follow_up->nudge")
    assert seen[-1] is None and post.calls[-1]["data"] is None
