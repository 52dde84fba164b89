"""What the service's plans yield besides Redis calls (store.Command, Eval, Batch): the steps
around a write that the sync runner does directly and the async runner awaits. Pure values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal

from .values import ScheduledStep


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``signal`` (sender=SessionService) with ``kwargs``: ``send``, or ``asend``."""

    signal: Signal
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Actions:
    """Run the @on_enter actions of ``kwargs["target"]`` (signals.run_actions/arun_actions)."""

    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HandOff:
    """Hand ``step`` to the scheduling engine (``enqueue``/``aenqueue``), best effort."""

    step: ScheduledStep
    again: bool = False


@dataclass(frozen=True, slots=True)
class CancelJob:
    """Tell the scheduling engine ``step`` was cancelled (``cancel``/``acancel``), best effort."""

    step: ScheduledStep
