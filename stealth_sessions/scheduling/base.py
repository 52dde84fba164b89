"""The interface between SessionService and a task engine."""

from __future__ import annotations

from abc import ABC, abstractmethod

from asgiref.sync import sync_to_async
from django.core.checks import CheckMessage

from ..values import ScheduledStep


class StepScheduler(ABC):
    """Hands scheduled steps to a task engine. Set STEALTH_SESSIONS['SCHEDULER'] to the dotted
    path of a subclass; it is instantiated once, without arguments, by the service.

    An engine may deliver a job late, twice, or after a cancel: ``run_step`` applies each step
    at most once whatever happens, so implementations need not (and cannot) be exactly-once.
    Pending steps are stored by the app, not by the engine: a job the engine loses is handed
    over again by the sweep, so a failed ``enqueue`` is logged, not fatal.
    """

    @abstractmethod
    def enqueue(self, step: ScheduledStep, *, again: bool = False) -> None:
        """Arrange for ``stealth_sessions.scheduling.jobs.run_step(step.user_id, step.id)`` to
        run at ``step.due`` (promptly when in the past), never earlier. ``again``: the step was
        handed over before (sweep, early delivery); an engine naming jobs after steps must use
        a new name, as the earlier job may be running."""

    async def aenqueue(self, step: ScheduledStep, *, again: bool = False) -> None:
        """``enqueue`` for the async service. This default runs ``enqueue`` in a thread
        (``sync_to_async``): an engine with an asyncio client overrides it (Django's Tasks:
        ``Task.aenqueue``)."""
        await sync_to_async(self.enqueue)(step, again=again)

    async def acancel(self, step: ScheduledStep) -> None:
        """``cancel`` for the async service; by default in a thread, as ``aenqueue``."""
        await sync_to_async(self.cancel)(step)

    runs_tasks = False
    """Whether ``enqueue_task`` works: background bulk changes (stealth_sessions.jobs) need
    it; without it the admin changes small states inside the request."""

    def enqueue_task(self, func: str, *args: str) -> None:
        """Run ``func`` (a dotted path) with ``args`` soon, once, without a time limit (a
        bulk job may run for minutes). Optional: set ``runs_tasks = True`` when implemented."""
        raise NotImplementedError(f"{type(self).__name__} does not run tasks")

    def cancel(self, step: ScheduledStep) -> None:  # noqa: B027  (optional, on purpose)
        """Best effort: drop the step's pending job, to save the engine a no-op run."""

    def unavailable(self) -> str | None:
        """Why this engine cannot run in this process (a package it needs is not installed),
        or None. Checked by the system check (stealth_sessions.E011) and before a step is
        stored, so that a process that skipped the checks (a shell, gunicorn) never stores a
        step no engine will run."""
        return None

    def check(self) -> list[CheckMessage]:
        """Configuration problems, reported by ``manage.py check`` (stealth_sessions.E01x)."""
        return []
