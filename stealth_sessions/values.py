"""Frozen values handed out by the service: pure Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch, as the store keeps times."""
    return round(when.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    """An aware UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Session:
    """Where one user stands. ``flow``/``state`` are None when the stored slug is malformed or
    unknown to the flow map (shown as stored, so an operator can see and fix it)."""

    user_id: str
    slug: str
    flow: str | None
    state: str | None
    previous: str | None
    back_to: str | None
    version: int
    ttl: int | None


@dataclass(frozen=True, slots=True)
class Transition:
    """One entry of a user's history, newest first."""

    at: datetime
    source: str | None
    target: str
    method: str
    origin: str = "code"
    """What moved the user: "code", "api", "admin", "scheduler", or a name given to
    ``stealth_sessions.service.origin()``."""


@dataclass(frozen=True, slots=True)
class ListedSession:
    """A row of ``SessionService.browse()``: the session, when the user entered its state
    (their last transition; None if unknown) and how many scheduled steps are pending."""

    session: Session
    last_activity: datetime | None
    pending_steps: int


# -- scheduled steps ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduledStep:
    """A pending ``step_to_in``/``step_to_at``: ``target`` is the resolved slug, ``due`` and
    ``created`` are aware UTC datetimes. ``if_unchanged`` steps fire only if the user is still
    at ``source``, the slug they had when it was scheduled (None: they had no session).
    ``data``: the JSON object given when it was scheduled (None: none), passed to the
    receivers when it fires; ``retries``: how often it was handed back because the user was
    locked by another owner when it fired."""

    id: str
    user_id: str
    target: str
    due: datetime
    created: datetime
    if_unchanged: bool
    method: str = "step_to_in"
    source: str | None = None
    data: dict[str, Any] | None = None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What became of a scheduled step, newest first in ``scheduled_step_outcomes()``.
    ``outcome`` is "applied", "dropped" (if_unchanged, the user moved on), "failed" (``reason``
    says why) or "cancelled". ``retries``: how often it had been handed back first because
    the user was locked by another owner."""

    at: datetime
    step_id: str
    target: str
    outcome: str
    reason: str
    retries: int = 0


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a bulk operation did: ``user_ids``, the users it changed; ``skipped``, how many it
    left as they were (moved or reset by someone else between the listing and their write, or,
    for reset_many, without a session)."""

    user_ids: tuple[str, ...]
    skipped: int

    @property
    def changed(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds a user's lock (``current_lock()``; ``SessionInterrupted.lock``): ``holder``
    (host:pid:thread[/task] of the code that took it), ``since`` it was taken, ``until`` it
    auto-releases (aware UTC datetimes), the ``slug`` the user was at when it was taken (None:
    no session; Stealth's ``find_lock`` gives the same), and whether the running code owns it
    (``mine``)."""

    user_id: str
    holder: str
    since: datetime
    until: datetime
    slug: str | None
    mine: bool
