"""RQ through django-rq: the engine shipped and tested.

Workers: ``manage.py rqworker <SCHEDULER_QUEUE> --with-scheduler`` (the scheduler moves due
jobs to the queue; with several workers one of them holds its lock). django-rq is imported
only when used, so the app works without it until a step is scheduled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.utils import timezone

from ..conf import conf
from ..values import ScheduledStep
from .base import StepScheduler

if TYPE_CHECKING:
    from rq import Queue

JOB = "stealth_sessions.scheduling.jobs.run_step"
# Results of applied steps are also in the step outcomes list: RQ need not keep them long.
RESULT_TTL = 300
FAILURE_TTL = 7 * 24 * 3600
# A bulk job changes about 3,500 users a second: 6 hours is far more than the largest state.
TASK_TIMEOUT = 6 * 3600


def job_id(step: ScheduledStep) -> str:
    return f"stealth_sessions_step_{step.id}"


class RQStepScheduler(StepScheduler):
    """Schedules ``run_step`` with ``Queue.enqueue_at`` on STEALTH_SESSIONS['SCHEDULER_QUEUE']."""

    def __init__(self) -> None:
        self._queue: Queue | None = None

    def queue(self) -> Queue:
        # Kept: django_rq.get_queue() opens a new connection each call (~6 ms a step).
        if self._queue is None:
            import django_rq

            self._queue = django_rq.get_queue(conf.SCHEDULER_QUEUE)
        return self._queue

    def enqueue(self, step: ScheduledStep, *, again: bool = False) -> None:
        options: dict[str, Any] = {
            "result_ttl": RESULT_TTL,
            "failure_ttl": FAILURE_TTL,
            "description": f"scheduled step {step.id}: {step.user_id} -> {step.target}",
        }
        if not again:
            options["job_id"] = job_id(step)  # so cancel() finds it
        # RQ's scheduler compares whole seconds (it truncates the time): round up, so the job
        # never runs before the step is due.
        when = step.due
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        queue = self.queue()
        if when <= timezone.now():
            queue.enqueue(JOB, step.user_id, step.id, **options)
        else:
            queue.enqueue_at(when, JOB, step.user_id, step.id, **options)

    runs_tasks = True

    def enqueue_task(self, func: str, *args: str) -> None:
        self.queue().enqueue(
            func,
            *args,
            job_timeout=TASK_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            description=f"{func.rpartition('.')[2]}{args!r}",
        )

    def cancel(self, step: ScheduledStep) -> None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        queue = self.queue()
        try:
            job = Job.fetch(job_id(step), connection=queue.connection)
        except NoSuchJobError:
            return
        # A started job is left alone: it finds the step gone and does nothing.
        if job.get_status(refresh=False) in (JobStatus.SCHEDULED, JobStatus.QUEUED):
            job.delete()

    def unavailable(self) -> str | None:
        try:
            import django_rq  # noqa: F401
            import rq  # noqa: F401
        except ImportError as exc:
            return (
                f"{type(self).__name__} runs scheduled steps on RQ, but {exc.name or 'django-rq'}"
                " is not installed: pip install 'stealth-sessions[rq]'"
            )
        return None

    def check(self) -> list[CheckMessage]:
        name = conf.SCHEDULER_QUEUE
        queues = getattr(settings, "RQ_QUEUES", None) or {}
        if "django_rq" not in settings.INSTALLED_APPS:
            return [
                Error(
                    "Scheduled steps run on RQ, but 'django_rq' is not in INSTALLED_APPS.",
                    hint="pip install 'stealth-sessions[rq]', add 'django_rq' to INSTALLED_APPS "
                    "and run `manage.py rqworker <queue> --with-scheduler`; or set "
                    "STEALTH_SESSIONS['SCHEDULER'] to another engine, or to None to do "
                    "without scheduled steps.",
                    id="stealth_sessions.E011",
                )
            ]
        if not isinstance(queues, dict) or name not in queues:
            return [
                Error(
                    f"STEALTH_SESSIONS['SCHEDULER_QUEUE'] names the RQ queue {name!r}, which is "
                    "not in RQ_QUEUES.",
                    hint=f"Add RQ_QUEUES = {{{name!r}: {{'URL': REDIS_URL}}}} (the Redis of the "
                    "sessions is fine), or point SCHEDULER_QUEUE at a declared queue.",
                    id="stealth_sessions.E010",
                )
            ]
        if queues[name].get("ASYNC", True) is False:
            return [
                Error(
                    f"The RQ queue {name!r} has ASYNC False: scheduled jobs are never run by a "
                    "worker.",
                    hint="Remove 'ASYNC': False from that queue, or use another queue.",
                    id="stealth_sessions.E010",
                )
            ]
        return []
