"""Django's Tasks framework as the scheduling engine: ``django.tasks`` on Django 6, the
``django-tasks`` backport on Django 5.2 (``pip install 'stealth-sessions[tasks]'``)::

    STEALTH_SESSIONS = {
        "SCHEDULER": "stealth_sessions.scheduling.tasks.DjangoTasksScheduler",
        "TASKS_BACKEND": "default",      # an alias of TASKS; its backend must defer tasks
        "SCHEDULER_QUEUE": "default",    # one of that backend's QUEUES
    }

Any Tasks backend that supports ``run_after`` (``supports_defer``) works, e.g. django-tasks-db's
``DatabaseBackend`` with its worker ``manage.py db_worker``. A step's job is the task
``stealth_sessions.scheduling.tasks.run_step``, enqueued with ``run_after=step.due``; it calls
``run_scheduled_step``, which applies a step at most once however often (or late) the job
runs, so the guarantees are the RQ engine's. The framework has no way to cancel a task:
a job left after a cancel finds its step gone and does nothing. Lost jobs (a flushed
database, a failed enqueue) are recovered by the sweep: ``manage.py stealth_sessions sweep
--every 60``.

The task objects are built on first access (a module ``__getattr__``), so that this module
imports without a Tasks framework installed (the system check then says what is missing) and
so that they use the backend and queue named in the settings when they are read.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils import timezone
from django.utils.module_loading import import_string

from ..conf import conf
from ..values import ScheduledStep
from .base import StepScheduler
from .jobs import run_step as _apply_step

__all__ = ["DjangoTasksScheduler"]


def _framework() -> Any:
    """``django.tasks`` (Django 6), else the ``django_tasks`` backport; ImportError if neither."""
    try:
        import django.tasks as framework
    except ImportError:
        import django_tasks as framework  # type: ignore[no-redef]
    return framework


def _run_step(user_id: str, step_id: str) -> str:
    return _apply_step(user_id, step_id)


def _run_function(func: str, *args: str) -> Any:
    return import_string(func)(*args)


# The tasks' functions are named as the module attributes the workers import by path
# (``Task.module_path``), which __getattr__ below provides.
_run_step.__name__ = _run_step.__qualname__ = "run_step"
_run_function.__name__ = _run_function.__qualname__ = "run_function"
_FUNCTIONS = {"run_step": _run_step, "run_function": _run_function}


def __getattr__(name: str) -> Any:
    """``run_step`` and ``run_function``: Tasks on STEALTH_SESSIONS['TASKS_BACKEND'] and
    SCHEDULER_QUEUE (workers import them by path)."""
    func = _FUNCTIONS.get(name)
    if func is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _framework().task(backend=conf.TASKS_BACKEND, queue_name=conf.SCHEDULER_QUEUE)(func)


class DjangoTasksScheduler(StepScheduler):
    """Enqueues ``run_step`` with ``run_after=step.due`` on STEALTH_SESSIONS['TASKS_BACKEND']."""

    def _task(self, name: str, run_after: Any = None) -> Any:
        task = __getattr__(name)
        return task if run_after is None else task.using(run_after=run_after)

    def _due(self, step: ScheduledStep) -> Any:
        # A due time in the past: run now (no run_after), as the RQ engine does.
        return step.due if step.due > timezone.now() else None

    def enqueue(self, step: ScheduledStep, *, again: bool = False) -> None:
        self._task("run_step", self._due(step)).enqueue(step.user_id, step.id)

    async def aenqueue(self, step: ScheduledStep, *, again: bool = False) -> None:
        # The framework's own async enqueue (a backend may still use a thread inside).
        await self._task("run_step", self._due(step)).aenqueue(step.user_id, step.id)

    runs_tasks = True

    def enqueue_task(self, func: str, *args: str) -> None:
        self._task("run_function").enqueue(func, *args)

    def unavailable(self) -> str | None:
        try:
            _framework()
        except ImportError:
            return (
                f"{type(self).__name__} needs Django's Tasks framework: Django 6, or on Django "
                "5.2 the django-tasks backport (pip install 'stealth-sessions[tasks]')"
            )
        return None

    def check(self) -> list[CheckMessage]:
        """E013: the TASKS alias is unknown, its backend cannot defer tasks (run_after), or
        it has no SCHEDULER_QUEUE queue."""
        framework = _framework()
        alias, queue = conf.TASKS_BACKEND, conf.SCHEDULER_QUEUE
        try:
            backend = framework.task_backends[alias]
        except Exception as exc:  # InvalidTaskBackend(Error), or a backend that fails to build
            return [
                Error(
                    f"STEALTH_SESSIONS['TASKS_BACKEND'] = {alias!r} is not a usable Tasks "
                    f"backend: {exc}",
                    hint="Add it to TASKS, e.g. TASKS = {'default': {'BACKEND': "
                    "'django_tasks_db.DatabaseBackend'}}, or point TASKS_BACKEND at one.",
                    id="stealth_sessions.E013",
                )
            ]
        if not backend.supports_defer:
            return [
                Error(
                    f"The Tasks backend {alias!r} ({type(backend).__name__}) cannot defer tasks "
                    "(supports_defer is False): scheduled steps would run at once, or fail.",
                    hint="Use a backend that supports run_after, e.g. django-tasks-db's "
                    "DatabaseBackend with its worker `manage.py db_worker`.",
                    id="stealth_sessions.E013",
                )
            ]
        if queue not in backend.queues:
            return [
                Error(
                    f"STEALTH_SESSIONS['SCHEDULER_QUEUE'] = {queue!r} is not a queue of the "
                    f"Tasks backend {alias!r} (its QUEUES: {sorted(backend.queues)}).",
                    hint="Add it to that backend's QUEUES, or set SCHEDULER_QUEUE to one of them.",
                    id="stealth_sessions.E013",
                )
            ]
        return []
