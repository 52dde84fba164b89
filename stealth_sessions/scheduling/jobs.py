"""The functions engines run. Importable by dotted path, plain arguments only."""

from __future__ import annotations

from ..conf import conf
from ..service import get_session_service


def run_step(user_id: str, step_id: str) -> str:
    """Apply scheduled step ``step_id`` of ``user_id`` if still pending; returns its outcome
    ("applied", "dropped", "failed", "gone", "early", "retried"). See
    SessionService.run_scheduled_step."""
    return get_session_service().run_scheduled_step(user_id, step_id)


def sweep(grace: float | None = None) -> int:
    """Hand to the engine again the pending steps overdue by more than ``grace`` seconds
    (default STEALTH_SESSIONS['STEP_SWEEP_GRACE']), and the background bulk jobs whose run
    died (their lease expired: see stealth_sessions.jobs); returns how many of both. Run it
    periodically: ``manage.py stealth_sessions sweep --every 60`` or ``manage.py rqcron
    stealth_sessions.scheduling.cron``."""
    service = get_session_service()
    steps = service.sweep_scheduled(conf.STEP_SWEEP_GRACE if grace is None else grace)
    return steps + service.jobs.sweep()


def purge() -> int:
    """Drop the users whose session expired from the indexes (SESSION_TTL set); returns how
    many. Run it periodically: ``manage.py stealth_sessions_purge --every 60`` or ``manage.py
    rqcron stealth_sessions.scheduling.cron``."""
    return get_session_service().purge_expired()


def run_bulk_job(job_id: str) -> str:
    """Run (or go on with) a background bulk change; returns its status. See
    stealth_sessions.jobs."""
    return get_session_service().jobs.run(job_id)
