"""A django-health-check check (``pip install 'stealth-sessions[health]'``): the session
store answers, and no scheduled step waits more than ``max_step_delay`` past its due time
(the task engine's workers, or the sweep, are not running)::

    # urls.py
    from health_check.views import HealthCheckView

    path("health/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        ("stealth_sessions.contrib.health_check.SessionStore",
         {"max_step_delay": timedelta(minutes=10)}),
    ])),
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from ..exceptions import SessionStoreUnavailable
from ..service import get_session_service


@dataclasses.dataclass
class SessionStore(HealthCheck):
    """Pings the session store, then looks at the oldest overdue scheduled step.
    ``max_step_delay``: how late a step may be (None: scheduled steps are not checked). The
    default leaves room for the sweep (STEP_SWEEP_GRACE, 5 minutes) to recover a lost job."""

    max_step_delay: timedelta | None = timedelta(minutes=10)

    def run(self) -> None:
        service = get_session_service()
        try:
            service.store.ping()
            oldest = None if self.max_step_delay is None else service.scheduled.oldest_overdue()
        except SessionStoreUnavailable as exc:
            # Not the message: it may name hosts. The check's log record has the cause.
            raise ServiceUnavailable("The session store (Redis) does not answer") from exc
        if oldest is None or self.max_step_delay is None:
            return
        late = timezone.now() - oldest
        if late > self.max_step_delay:
            raise ServiceUnavailable(
                f"A scheduled step is {_seconds(late)} overdue (more than "
                f"{_seconds(self.max_step_delay)}): are the task engine's workers and the "
                "sweep running?"
            )


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"
