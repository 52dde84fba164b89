"""Scheduled steps' hand-off to a task engine: a thin adapter under SessionService.

The service keeps pending steps in Redis and decides what a step does; an engine only runs
``jobs.run_step(user_id, step_id)`` at the due time. ``base.StepScheduler`` is the whole
interface (RQ ships in ``rq_engine``; Django's Tasks or Celery would be one more class), and
``jobs.sweep`` recovers steps whose job the engine lost. See docs/scheduling.md.
"""

from .base import StepScheduler

__all__ = ["StepScheduler"]
