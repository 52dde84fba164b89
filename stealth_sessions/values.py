"""Frozen values handed out by the service: pure Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
