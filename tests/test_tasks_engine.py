"""Scheduled steps on Django's Tasks framework (DjangoTasksScheduler): the engine's checks
and hand-off in this process, then end to end with django-tasks-db's DatabaseBackend and its
real worker (``manage.py db_worker``) in subprocesses, as the RQ engine is tested."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from stealth_sessions.scheduling import tasks as tasks_engine
from stealth_sessions.scheduling.tasks import DjangoTasksScheduler
from stealth_sessions.service import get_session_service

ENGINE = "stealth_sessions.scheduling.tasks.DjangoTasksScheduler"
ROOT = Path(__file__).resolve().parent.parent
IMMEDIATE = (
    "django.tasks.backends.immediate.ImmediateBackend"
    if tasks_engine._framework().__name__ == "django.tasks"
    else "django_tasks.backends.immediate.ImmediateBackend"
)
DUMMY = IMMEDIATE.replace("immediate.ImmediateBackend", "dummy.DummyBackend")


@pytest.fixture
def on_tasks(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": ENGINE}
    settings.TASKS = {"default": {"BACKEND": DUMMY}}
    backend = tasks_engine._framework().task_backends["default"]
    backend.clear()
    return backend


def _ids():
    return [m.id for m in run_checks() if m.id.startswith("stealth_sessions.")]


def test_a_backend_that_defers_passes_the_checks(on_tasks):
    assert _ids() == []


def test_check_a_backend_that_cannot_defer(on_tasks, settings):
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE}}
    [error] = [m for m in run_checks() if m.id.startswith("stealth_sessions.")]
    assert error.id == "stealth_sessions.E013" and "cannot defer" in error.msg


def test_check_an_unknown_backend_alias_or_queue(on_tasks, settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "TASKS_BACKEND": "nope"}
    assert _ids() == ["stealth_sessions.E013"]
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "TASKS_BACKEND": "default"}
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER_QUEUE": "steps"}
    assert _ids() == ["stealth_sessions.E013"]


def test_without_the_framework_it_is_a_check_error_and_refused(on_tasks, monkeypatch):
    def missing():
        raise ImportError("No module named 'django_tasks'")

    monkeypatch.setattr(tasks_engine, "_framework", missing)
    [error] = [m for m in run_checks() if m.id.startswith("stealth_sessions.")]
    assert error.id == "stealth_sessions.E011" and "stealth-sessions[tasks]" in error.msg
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="Tasks framework"):
        get_session_service().step_to_in("u1", 60, slug="hello->ask_name")
    assert get_session_service().scheduled_steps("u1") == []


def test_a_step_is_enqueued_as_run_step_with_run_after_its_due_time(on_tasks):
    service = get_session_service()
    assert isinstance(service.scheduler, DjangoTasksScheduler)
    step = service.step_to_in("u1", 3600, slug="follow_up->nudge")
    [result] = on_tasks.results
    assert result.task.module_path == "stealth_sessions.scheduling.tasks.run_step"
    assert result.task.run_after == step.due and result.task.queue_name == "default"
    assert list(result.args) == ["u1", step.id]
    past = service.step_to_at("u2", timezone.now() - timedelta(seconds=5), slug="hello->say_hello")
    assert on_tasks.results[-1].task.run_after is None, f"{past.due} is due: run now"


async def test_astep_to_in_enqueues_with_the_frameworks_aenqueue(on_tasks):
    service = get_session_service()
    step = await service.astep_to_in("u1", 60, slug="follow_up->nudge")
    [result] = on_tasks.results
    assert list(result.args) == ["u1", step.id] and result.task.run_after == step.due
    await service.aclose()


def test_the_task_runs_the_step_once(on_tasks):
    service = get_session_service()
    step = service.step_to_at("u1", timezone.now() - timedelta(seconds=1), slug="follow_up->nudge")
    task = tasks_engine.run_step
    assert task.call("u1", step.id) == "applied"
    assert task.call("u1", step.id) == "gone"
    assert service.get("u1").slug == "follow_up->nudge"


# -- end to end: django-tasks-db and its worker, in subprocesses -------------------------------


@pytest.fixture
def tasks_db(tmp_path):
    """A migrated SQLite file for the DatabaseBackend; ``run(code)`` runs Python in a process on
    tests/tasks_settings.py (printing what it returns, as JSON); ``work()`` runs the worker."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.tasks_settings",
        "STEALTH_TEST_TASKS_DB": str(tmp_path / "tasks.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120)

    def run(code: str):
        script = "import django, json\ndjango.setup()\n" + textwrap.dedent(code)
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None

    def work():
        done = subprocess.run(
            [*manage, "db_worker", "--batch", "--interval", "0.1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    run.env = env  # type: ignore[attr-defined]
    return run, work


DELAY = 12  # seconds: more than a worker process takes to start on a busy machine
SCHEDULE = (
    f"DELAY = {DELAY}\n"
    """
from stealth_sessions.service import get_session_service
s = get_session_service()
for user in ("u1", "u2", "u3"):
    s.step_to(user, slug="hello->say_hello")
first = s.step_to_in("u1", DELAY, slug="follow_up->nudge")
steps = {
    "u1": first.id,
    "u2": s.step_to_in("u2", DELAY, slug="follow_up->nudge", if_unchanged=True).id,
    "u3": s.step_to_in("u3", DELAY, slug="follow_up->nudge").id,
    "due": first.due.timestamp() + 0.1,
}
s.step_to("u2", slug="hello->ask_name")  # moved on: the if_unchanged step is dropped
s.cancel_scheduled("u3")
print(json.dumps(steps))
"""
)


def outcomes(user_id):
    return [(o.outcome, o.target) for o in get_session_service().scheduled_step_outcomes(user_id)]


@pytest.mark.slow
def test_end_to_end_with_the_database_backend_and_its_worker(tasks_db):
    run, work = tasks_db
    steps = run(SCHEDULE)
    work()
    service = get_session_service()
    if time.time() < steps["due"]:  # the worker finished before the steps were due
        assert service.get("u1").slug == "hello->say_hello", "run before its run_after"
        assert len(service.scheduled_steps("u1")) == 1
    time.sleep(max(0, steps["due"] + 0.5 - time.time()))
    work()
    assert service.get("u1").slug == "follow_up->nudge"
    assert [t.method for t in service.history("u1")][0] == "step_to_in"
    assert outcomes("u1") == [("applied", "follow_up->nudge")]
    assert service.get("u2").slug == "hello->ask_name"
    assert outcomes("u2")[0][0] == "dropped"
    assert service.get("u3").slug == "hello->say_hello"
    assert outcomes("u3") == [("cancelled", "follow_up->nudge")]
    assert service.scheduled_steps("u1") == service.scheduled_steps("u2") == []

    # Delivered again (twice) after it was applied: nothing happens.
    results = run(f"""
        from stealth_sessions.scheduling import tasks
        for _ in range(2):
            tasks.run_step.enqueue("u1", {steps["u1"]!r})
        print(json.dumps(None))
    """)
    assert results is None
    work()
    assert service.get("u1").version == 2
    assert outcomes("u1") == [("applied", "follow_up->nudge")]
    done = run("""
        from django_tasks_db.models import DBTaskResult
        print(json.dumps(sorted(str(r.return_value) for r in DBTaskResult.objects.all())))
    """)
    # u1 applied, then delivered twice more; u2 dropped (moved on); u3's job after the cancel
    assert sorted(done) == ["applied", "dropped", "gone", "gone", "gone"]


@pytest.mark.slow
def test_the_sweep_hands_a_lost_job_to_the_engine_again(tasks_db):
    run, work = tasks_db
    step_id = run("""
        from django_tasks_db.models import DBTaskResult
        from stealth_sessions.service import get_session_service
        step = get_session_service().step_to_in("u1", 1, slug="follow_up->nudge")
        DBTaskResult.objects.all().delete()  # the engine lost the job
        print(json.dumps(step.id))
    """)
    time.sleep(1.2)
    work()
    assert get_session_service().scheduled_steps("u1")[0].id == step_id
    handed = run("""
        from stealth_sessions.scheduling.jobs import sweep
        print(json.dumps(sweep(0)))
    """)
    assert handed == 1
    work()
    assert get_session_service().get("u1").slug == "follow_up->nudge"
    assert outcomes("u1") == [("applied", "follow_up->nudge")]


SLOW_WORKER = """
import sys, time
from pathlib import Path
import django
django.setup()
from django.core.management import call_command
from stealth_sessions import signals

def stall(sender, **kwargs):
    Path(sys.argv[1]).write_text("in the step")
    time.sleep(120)  # killed meanwhile

signals.pre_transition.connect(stall, weak=False)
call_command("db_worker", "--batch", "--interval", "0.1")
"""


@pytest.mark.slow
def test_a_worker_killed_mid_step_loses_nothing(tasks_db, tmp_path):
    run, work = tasks_db
    step = run("""
        from stealth_sessions.service import get_session_service
        s = get_session_service()
        s.step_to("u1", slug="hello->say_hello")
        step = s.step_to_in("u1", 0.5, slug="follow_up->nudge")
        print(json.dumps([step.id, step.due.timestamp()]))
    """)
    time.sleep(max(0, step[1] + 0.2 - time.time()))
    marker = tmp_path / "entered"
    worker = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, str(marker)], env=run.env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        worker.kill()
        worker.wait(20)
    service = get_session_service()
    assert service.get("u1").slug == "hello->say_hello"
    assert [s.id for s in service.scheduled_steps("u1")] == [step[0]]  # still pending
    assert (
        run("from stealth_sessions.scheduling.jobs import sweep\nprint(json.dumps(sweep(0)))") == 1
    )
    work()
    assert service.get("u1").slug == "follow_up->nudge"
    assert outcomes("u1") == [("applied", "follow_up->nudge")]
    assert service.scheduled_steps("u1") == []
