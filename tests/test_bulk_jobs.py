"""Bulk changes of a state off the request: a background job with progress, cancel and
resume, run by real RQ workers, one run at a time (a lease), taken up again by the sweep when
its worker dies; without an engine, small states in the request only."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import zlib
from io import StringIO

import django_rq
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rq.worker import SimpleWorker

from stealth_sessions import jobs, signals
from stealth_sessions.exceptions import InvalidStateTransition
from stealth_sessions.jobs import BUSY, CANCELLED, DONE, MOVE, RESET
from stealth_sessions.scheduling.jobs import sweep
from tests.slow_worker_settings import LEASE

SLUG, TARGET = "hello->ask_name", "goodbye->say_bye"


def url(name: str, *args: str) -> str:
    return reverse(f"admin:stealth_sessions_session_{name}", args=args)


def burst() -> None:
    """A real RQ worker, in this process, until the queue is empty."""
    queue = django_rq.get_queue("default")
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def at_state(service, n: int, slug: str = SLUG) -> list[str]:
    """``n`` users at ``slug``, newest last, all in one shard: the walk reads a shard at a
    time, so its pages are then full batches, newest first."""
    ids = (f"u{i:06d}" for i in itertools.count())
    users = list(itertools.islice((u for u in ids if zlib.crc32(u.encode()) % 64 == 0), n))
    for user in users:
        service.step_to(user, slug=slug)
    return users


def moves(service, user: str) -> int:
    return sum(t.method == "update_session_to" for t in service.history(user))


@pytest.fixture
def admin_client(transactional_db) -> Client:
    # A transactional database: django-rq enqueues when the transaction commits.
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


# -- through the admin ---------------------------------------------------------------------


def test_the_admin_moves_a_state_in_the_background_and_shows_the_progress(admin_client, service):
    users = at_state(service, 5)
    response = admin_client.post(url("move_state"), {"slug": SLUG, "target": TARGET})
    assert response.status_code == 302 and "/bulk-job/" in response["Location"]
    page = admin_client.get(response["Location"]).content.decode()
    assert '<strong id="ss-job-status">queued</strong>' in page
    assert '<td id="ss-job-total">5</td>' in page and 'http-equiv="refresh"' in page
    assert {service.peek(u).slug for u in users} == {SLUG}  # nothing done in the request
    burst()
    page = admin_client.get(response["Location"]).content.decode()
    assert '<strong id="ss-job-status">done</strong>' in page
    assert '<td id="ss-job-done">5</td>' in page and 'http-equiv="refresh"' not in page
    assert {service.peek(u).slug for u in users} == {TARGET}
    assert service.history(users[0])[0].origin == "admin"


def test_the_admin_resets_a_state_in_the_background(admin_client, service):
    users = at_state(service, 3)
    response = admin_client.post(url("reset_state"), {"slug": SLUG})
    burst()
    assert all(service.peek(u) is None for u in users)
    assert '<td id="ss-job-done">3</td>' in admin_client.get(response["Location"]).content.decode()


def test_the_admin_cancels_a_job(admin_client, service):
    users = at_state(service, 3)
    location = admin_client.post(url("reset_state"), {"slug": SLUG})["Location"]
    admin_client.post(location, {"action": "cancel"})
    burst()
    page = admin_client.get(location).content.decode()
    assert '<strong id="ss-job-status">cancelled</strong>' in page
    assert all(service.peek(u) is not None for u in users)


def test_without_an_engine_a_small_state_changes_in_the_request(admin_client, settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": None}
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    at_state(service, 3)
    done = admin_client.post(url("reset_state"), {"slug": SLUG}, follow=True)
    assert "Reset 3 sessions at hello-&gt;ask_name." in done.content.decode()


def test_without_an_engine_a_large_state_gets_a_clear_message(admin_client, settings, monkeypatch):
    from stealth_sessions.admin.options import SessionAdmin
    from stealth_sessions.service import get_session_service

    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": None}
    monkeypatch.setattr(SessionAdmin, "bulk_in_request_limit", 2)
    service = get_session_service()
    users = at_state(service, 3)
    for page, data in ((url("reset_state"), {}), (url("move_state"), {"target": TARGET})):
        body = admin_client.post(page, {"slug": SLUG, **data}, follow=True).content.decode()
        assert "3 users are at hello-&gt;ask_name: too many to change in one web request" in body
        assert "Configure a task engine" in body
    assert {service.peek(u).slug for u in users} == {SLUG}


# -- the job itself --------------------------------------------------------------------------


def test_a_job_is_refused_before_anything_is_written(service):
    with pytest.raises(InvalidStateTransition):
        service.jobs.start(MOVE, SLUG, "hello->nope")
    with pytest.raises(InvalidStateTransition):
        service.jobs.start(MOVE, SLUG, SLUG)
    assert django_rq.get_queue("default").count == 0


def test_skipped_and_failed_users_are_counted_and_the_job_goes_on(service, receiver):
    users = at_state(service, 6)

    def meanwhile(sender, user_id, **kwargs):
        if user_id == users[-1]:  # the first in the walk (newest first)
            service.step_to(users[0], slug="hello->get_name")  # moves on before its turn
        if user_id == users[2]:
            raise RuntimeError("the bot refused")

    receiver(signals.pre_transition, meanwhile)
    job = service.jobs.start(MOVE, SLUG, TARGET)
    assert service.jobs.run(job.id) == DONE
    job = service.jobs.get(job.id)
    assert (job.total, job.done, job.skipped, job.failed) == (6, 4, 1, 1)
    assert "the bot refused" in job.error and users[2] in job.error
    assert service.peek(users[0]).slug == "hello->get_name"
    assert service.peek(users[2]).slug == SLUG


def test_a_cancel_stops_the_job_between_batches(service, receiver, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH", 2)
    at_state(service, 7)
    job = service.jobs.start(RESET, SLUG)
    seen = []

    def cancel_at_the_third(sender, user_id, **kwargs):
        seen.append(user_id)
        if len(seen) == 3:
            assert service.jobs.cancel(job.id)

    receiver(signals.session_reset, cancel_at_the_third)
    assert service.jobs.run(job.id) == CANCELLED
    job = service.jobs.get(job.id)
    assert job.done == 4 and service.count_by_state() == {SLUG: 3}
    assert service.jobs.cancel(job.id) is False and service.jobs.resume(job.id) is False


def test_an_interrupted_run_resumes_without_doing_a_user_twice(service, receiver, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH", 10)
    users = at_state(service, 35)
    job = service.jobs.start(MOVE, SLUG, TARGET)
    calls = []

    class Killed(BaseException):  # what SIGKILL looks like from inside: nothing after it
        pass

    def die_in_the_third_batch(sender, user_id, **kwargs):
        calls.append(user_id)
        if len(calls) == 25:
            raise Killed

    receiver(signals.post_transition, die_in_the_third_batch)
    with pytest.raises(Killed):
        service.jobs.run(job.id)
    signals.post_transition.disconnect(die_in_the_third_batch)
    assert service.jobs.get(job.id).done == 20  # two batches saved
    assert service.jobs.run(job.id) == DONE
    job = service.jobs.get(job.id)
    assert (job.done, job.skipped, job.failed) == (35, 0, 0)
    assert all(moves(service, u) == 1 for u in users)


def test_a_second_run_of_a_running_job_does_nothing(service, receiver):
    users = at_state(service, 5)
    job = service.jobs.start(MOVE, SLUG, TARGET)
    meanwhile = []

    def run_again(sender, user_id, **kwargs):
        if not meanwhile:  # a duplicate delivery, then a Resume, while the first run works
            meanwhile.extend([service.jobs.run(job.id), service.jobs.resume(job.id)])

    receiver(signals.post_transition, run_again)
    assert service.jobs.run(job.id) == DONE
    assert meanwhile == [BUSY, False]
    job = service.jobs.get(job.id)
    assert (job.done, job.skipped, job.failed) == (5, 0, 0)
    assert all(moves(service, u) == 1 for u in users)


def test_only_unfinished_jobs_are_listed_for_the_sweep(service, redis_client):
    at_state(service, 3)
    job = service.jobs.start(RESET, SLUG)
    listed = service.store.keys.bulk_jobs
    assert redis_client.zrange(listed, 0, -1) == [job.id.encode()]
    assert service.jobs.sweep() == 0  # queued a moment ago: its worker may only be busy
    assert service.jobs.run(job.id) == DONE
    assert redis_client.zcard(listed) == 0 and not service.jobs.get(job.id).running


def test_the_sweep_command_hands_over_a_job_nobody_runs(service, settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "BULK_JOB_LEASE": 0.1}
    at_state(service, 2)
    service.jobs.start(RESET, SLUG)  # and its delivery is lost: no worker ever runs it
    time.sleep(0.2)
    out = StringIO()
    call_command("stealth_sessions", "sweep", stdout=out)
    assert out.getvalue().splitlines() == [
        "Handed 0 overdue scheduled step(s) to the engine.",
        "Handed 1 interrupted bulk job(s) to the engine.",
    ]
    assert django_rq.get_queue("default").count == 2


# -- real workers: killed half-way, or two given one job -----------------------------------


def worker(settings_module: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "django", "rqworker", "default", "--burst",
               "--worker-class", "rq.worker.SimpleWorker"]  # fmt: skip
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_taken_up_by_the_sweep_and_moves_each_user_once(
    service, settings
):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "BULK_JOB_LEASE": LEASE}
    users = at_state(service, 3000)
    job = service.jobs.start(MOVE, SLUG, TARGET)
    slow = worker("tests.slow_worker_settings")  # each move takes 2 ms more
    try:
        deadline = time.monotonic() + 60
        while service.jobs.get(job.id).done < 600:
            assert time.monotonic() < deadline and slow.poll() is None, "no progress"
            time.sleep(0.01)
    finally:
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait(10)
    killed = service.jobs.get(job.id)
    assert killed.status == "running" and 600 <= killed.done < 3000 and killed.running
    assert sweep() == 0  # its lease lives: the worker may only be slow
    assert service.jobs.resume(job.id) is False
    deadline = time.monotonic() + 5 * LEASE
    while service.jobs.get(job.id).running:  # until the dead worker's lease expires
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.05)
    time.sleep(LEASE)  # and the job saved no progress for a lease's duration
    assert sweep() == 1
    assert sweep() == 0  # handed over: not again before another lease's duration
    assert worker("tests.settings").wait(120) == 0
    job = service.jobs.get(job.id)
    assert (job.status, job.total, job.done, job.skipped, job.failed) == (DONE, 3000, 3000, 0, 0)
    assert service.count_by_state() == {TARGET: 3000}
    assert all(moves(service, u) == 1 for u in users)


@pytest.mark.slow
def test_two_workers_given_one_job_twice_do_not_both_work(service):
    users = at_state(service, 1500)
    job = service.jobs.start(MOVE, SLUG, TARGET)
    service.scheduler.enqueue_task(jobs.TASK, job.id)  # a duplicate delivery
    workers = [worker("tests.slow_worker_settings") for _ in range(2)]
    assert [w.wait(120) for w in workers] == [0, 0]
    queue = django_rq.get_queue("default")
    results = [
        queue.fetch_job(rq_id).return_value() for rq_id in queue.finished_job_registry.get_job_ids()
    ]
    assert sorted(results) == [BUSY, DONE]  # the second run returned at once
    job = service.jobs.get(job.id)
    assert (job.status, job.total, job.done, job.skipped, job.failed) == (DONE, 1500, 1500, 0, 0)
    assert all(moves(service, u) == 1 for u in users)
