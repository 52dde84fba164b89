"""The ``STEALTH_SESSIONS`` settings dict, read at access time so ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    "CACHE": "default",
    "SESSION_TTL": None,
    "FLOW_MAP": None,
    "KEY_NAMESPACE": "stealth",
    "HISTORY_LENGTH": 50,
    "LOCK_TIMEOUT": 30,
    "CONFLICT_RETRIES": 20,
    # Seconds a catch-all counter lives after the user's last failure at a state (Stealth: 15
    # minutes).
    "CATCH_ALL_TTL": 900,
    # Scheduled steps (step_to_in / step_to_at): see docs/scheduling.md. None: no engine, so
    # a bare install (no extras) passes its checks; scheduling a step then raises.
    "SCHEDULER": None,
    "SCHEDULER_QUEUE": "default",
    # DjangoTasksScheduler: the alias of TASKS whose backend runs the steps.
    "TASKS_BACKEND": "default",
    "STEP_SWEEP_GRACE": 300,
    "STEP_OUTCOMES_LENGTH": 20,
    "STEP_OUTCOMES_TTL": 30 * 24 * 3600,
    # A step firing while another owner holds the user's lock is retried this much later,
    # at most this many times (together: longer than LOCK_TIMEOUT, its auto-release).
    "STEP_LOCKED_RETRY_DELAY": 2,
    "STEP_LOCKED_RETRIES": 30,
    # Background bulk changes (stealth_sessions.jobs).
    "BULK_JOB_LEASE": 60,
    # Prometheus metrics (stealth_sessions.metrics; needs prometheus_client).
    "METRICS": False,
}


ENGINES = {
    "RQ (django-rq; pip install 'stealth-sessions[rq]')": (
        "stealth_sessions.scheduling.rq_engine.RQStepScheduler"
    ),
    "Django's Tasks framework (django.tasks; django-tasks on Django 5.2)": (
        "stealth_sessions.scheduling.tasks.DjangoTasksScheduler"
    ),
}
"""The engines shipped, named in the errors that ask for one."""


def engines_hint() -> str:
    return "; ".join(f"{path!r} for {name}" for name, path in ENGINES.items())


class Settings:
    """One typed property per setting; each reads the user's dict on every access."""

    def _get(self, name: str) -> Any:
        user = getattr(django_settings, "STEALTH_SESSIONS", None) or {}
        return user.get(name, DEFAULTS[name])

    @property
    def user_dict(self) -> dict[str, Any]:
        return dict(getattr(django_settings, "STEALTH_SESSIONS", None) or {})

    @property
    def CACHE(self) -> str:
        return self._get("CACHE")

    @property
    def SESSION_TTL(self) -> int | None:
        return self._get("SESSION_TTL")

    @property
    def FLOW_MAP(self) -> str | None:
        return self._get("FLOW_MAP")

    @property
    def KEY_NAMESPACE(self) -> str:
        return self._get("KEY_NAMESPACE")

    @property
    def HISTORY_LENGTH(self) -> int:
        return self._get("HISTORY_LENGTH")

    @property
    def LOCK_TIMEOUT(self) -> float:
        return self._get("LOCK_TIMEOUT")

    @property
    def CONFLICT_RETRIES(self) -> int:
        return self._get("CONFLICT_RETRIES")

    @property
    def CATCH_ALL_TTL(self) -> int:
        """Seconds a catch-all counter (record_failure) lives after its last failure."""
        return self._get("CATCH_ALL_TTL")

    # -- scheduled steps -----------------------------------------------------------------

    @property
    def SCHEDULER(self) -> str | None:
        """Dotted path of the StepScheduler class handing due steps to a task engine (None,
        the default: no engine, step_to_in/step_to_at raise ImproperlyConfigured)."""
        return self._get("SCHEDULER")

    @property
    def SCHEDULER_QUEUE(self) -> str:
        """The engine's queue for step jobs (for RQ: a key of RQ_QUEUES)."""
        return self._get("SCHEDULER_QUEUE")

    @property
    def TASKS_BACKEND(self) -> str:
        """DjangoTasksScheduler's Tasks backend: an alias of the TASKS setting."""
        return self._get("TASKS_BACKEND")

    @property
    def STEP_SWEEP_GRACE(self) -> float:
        """Seconds past due after which the sweep hands a still-pending step to the engine again."""
        return self._get("STEP_SWEEP_GRACE")

    @property
    def STEP_OUTCOMES_LENGTH(self) -> int:
        return self._get("STEP_OUTCOMES_LENGTH")

    @property
    def STEP_OUTCOMES_TTL(self) -> int:
        return self._get("STEP_OUTCOMES_TTL")

    @property
    def STEP_LOCKED_RETRY_DELAY(self) -> float:
        """Seconds after which a step that fired while the user was locked is tried again."""
        return self._get("STEP_LOCKED_RETRY_DELAY")

    @property
    def STEP_LOCKED_RETRIES(self) -> int:
        """How often a step is tried again while the user stays locked; then it fails."""
        return self._get("STEP_LOCKED_RETRIES")

    @property
    def BULK_JOB_LEASE(self) -> float:
        """Seconds a bulk job's run holds its lease without renewing it (it renews it after
        each batch): how long after its worker died the sweep hands the job over again."""
        return self._get("BULK_JOB_LEASE")

    @property
    def METRICS(self) -> bool:
        """Collect Prometheus metrics (stealth_sessions.metrics) in prometheus_client's
        default registry."""
        return self._get("METRICS")


conf = Settings()
