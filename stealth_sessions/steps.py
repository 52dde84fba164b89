"""Scheduled steps (``step_to_in`` / ``step_to_at``): the part of SessionService that keeps
pending steps, hands them to a task engine and applies them.

The app keeps pending steps in Redis itself (store: ``<user>:steps``, ``idx:steps``; no TTL), so
they can be listed and cancelled without asking the engine. The engine (``scheduler``, see
``stealth_sessions/scheduling/``) is only told "run step S of user U at T"; it may deliver that
late, twice or after a cancel: ``run_scheduled_step()`` applies a step at most once, because
transition.lua takes the step's record in the script that writes.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string

from . import locking, metrics, signals
from .conf import conf, engines_hint
from .context import origin
from .effects import CancelJob, HandOff, Send
from .exceptions import (
    InvalidSchedule,
    SessionConflict,
    SessionInterrupted,
    SessionStoreUnavailable,
    StealthSessionsError,
)
from .store import Plan, RedisStore
from .users import validate_user_id
from .values import ScheduledStep, Session, StepOutcome, from_ms, to_ms

if TYPE_CHECKING:
    from .scheduling.base import StepScheduler
    from .service import SessionService

logger = logging.getLogger("stealth_sessions.scheduling")

# Outcomes of a scheduled step (run_scheduled_step's return values and the recorded outcomes).
APPLIED, DROPPED, FAILED, CANCELLED, GONE, EARLY, RETRIED = (
    "applied", "dropped", "failed", "cancelled", "gone", "early", "retried"
)  # fmt: skip
_STEP_ID = re.compile(r"[0-9a-f]{32}")
MAX_DATA_BYTES = 4096
"""A scheduled step's ``data``, JSON-encoded, is at most this long (it is kept in Redis with
the step and handed to every receiver when it fires)."""


def encode_data(data: dict[str, Any] | None) -> str | None:
    """A step's ``data`` as stored (compact JSON), or None; InvalidSchedule if it is not a
    JSON object that reads back as given, or is over MAX_DATA_BYTES encoded."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidSchedule(f"data must be a dict (a JSON object), not {type(data).__name__}")
    try:
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidSchedule(f"data must be JSON-serialisable: {exc}") from exc
    if json.loads(encoded) != data:
        raise InvalidSchedule(
            "data must read back from JSON as given: use string keys, lists rather than "
            "tuples, and plain str/int/float/bool/None values"
        )
    size = len(encoded.encode())
    if size > MAX_DATA_BYTES:
        raise InvalidSchedule(
            f"data is {size} bytes as JSON, over the {MAX_DATA_BYTES} allowed: keep ids in it "
            "(a page or conversation id), not documents"
        )
    return encoded


class StepNotApplied(Exception):
    """The write refused a scheduled step: already applied or cancelled, or ``dropped``
    (if_unchanged, and the user moved on: ``current`` is their slug). Raised by the service's
    write path; run_scheduled_step turns it into an outcome."""

    def __init__(self, dropped: bool, current: str | None) -> None:
        self.dropped = dropped
        self.current = current
        super().__init__(dropped, current)


def load_scheduler(path: str | None) -> StepScheduler | None:
    """Instantiate ``STEALTH_SESSIONS['SCHEDULER']`` (None: scheduling steps raises)."""
    if path is None:
        return None
    try:
        scheduler_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"STEALTH_SESSIONS['SCHEDULER'] = {path!r} could not be imported: {exc}"
        ) from exc
    return scheduler_class()


class ScheduledSteps:
    """The service's scheduled-steps methods. Transitions go through the service's write
    path; signals are sent with ``sender=type(service)`` (SessionService)."""

    def __init__(
        self,
        service: SessionService,
        store: RedisStore,
        scheduler: StepScheduler | None,
        *,
        outcomes_length: int,
        outcomes_ttl: int,
        locked_retries: int = 30,
        locked_retry_delay: float = 2,
    ) -> None:
        self.service = service
        self.store = store
        self.scheduler = scheduler
        self.outcomes_length = outcomes_length
        self.outcomes_ttl = outcomes_ttl
        self.locked_retries = locked_retries
        self.locked_retry_delay = locked_retry_delay

    def plan_step_to_in(
        self,
        user_id: str,
        delay: timedelta | float,
        target: tuple[str | None, str | None, str | None, Session | None],
        if_unchanged: bool = False,
        data: dict[str, Any] | None = None,
    ) -> Plan[ScheduledStep]:
        """Schedule a ``step_to`` in ``delay`` (a timedelta or seconds, > 0). The target
        (``slug``, ``flow``, ``state``, ``session``: one of them, as for step_to) is resolved
        and validated now; the session is not changed. With ``if_unchanged`` the step fires
        only if the user is then still at the slug they are at now. ``data``: a JSON object
        (at most 4 kB encoded) kept with the step and passed as the ``data`` keyword to
        pre_transition, post_transition and ``@on_enter`` actions when it fires (Stealth's
        ``target_id``: the page or number the bot answers from)."""
        if isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise InvalidSchedule(
                f"delay must be a timedelta or a number of seconds, not {type(delay).__name__}"
            )
        if not (seconds > 0 and math.isfinite(seconds)):
            raise InvalidSchedule(
                f"delay must be more than 0 seconds, not {delay!r}; use step_to() to step now"
            )
        due = timezone.now() + timedelta(seconds=seconds)
        return (
            yield from self._schedule(
                user_id, due, target, if_unchanged, method="step_to_in", data=data
            )
        )

    def plan_step_to_at(
        self,
        user_id: str,
        when: datetime,
        target: tuple[str | None, str | None, str | None, Session | None],
        if_unchanged: bool = False,
        data: dict[str, Any] | None = None,
    ) -> Plan[ScheduledStep]:
        """Schedule a ``step_to`` at ``when``, an aware datetime (in the past: it fires
        promptly). Otherwise as ``step_to_in``."""
        if not isinstance(when, datetime):
            raise InvalidSchedule(f"when must be a datetime, not {type(when).__name__}")
        if timezone.is_naive(when):
            raise InvalidSchedule(
                f"when={when.isoformat()} is a naive datetime: its time zone is ambiguous. "
                "Give an aware one, e.g. datetime(..., tzinfo=UTC) or "
                "django.utils.timezone.make_aware(when)"
            )
        return (
            yield from self._schedule(
                user_id, when, target, if_unchanged, method="step_to_at", data=data
            )
        )

    def _scheduled_steps(self, user_id: str) -> Plan[list[ScheduledStep]]:
        """The user's pending steps, soonest first."""
        records = yield from self.store.plan_steps(validate_user_id(user_id))
        return self.from_records(user_id, records)

    def plan_cancel_scheduled(self, user_id: str, step_id: str | None = None) -> Plan[int]:
        """Cancel one pending step (``step_id``) or all of the user's; returns how many were
        cancelled (0 for an unknown, applied or already cancelled step)."""
        validate_user_id(user_id)
        if step_id is None:
            return (yield from self._cancel_steps(user_id, (), reason="cancelled"))
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            return 0
        return (yield from self._cancel_steps(user_id, (step_id,), reason="cancelled"))

    def plan_step_outcomes(self, user_id: str, limit: int = 20) -> Plan[list[StepOutcome]]:
        """What became of the user's latest steps, newest first (at most
        STEP_OUTCOMES_LENGTH are kept, for STEP_OUTCOMES_TTL seconds)."""
        if limit < 1:
            return []
        entries = yield from self.store.plan_step_outcomes(validate_user_id(user_id), limit)
        return [
            StepOutcome(
                at=from_ms(entry[0]),
                step_id=entry[1],
                target=entry[2],
                outcome=entry[3],
                reason=entry[4],
                retries=int(entry[5]) if len(entry) > 5 else 0,
            )
            for entry in entries
        ]

    def run_scheduled_step(self, user_id: str, step_id: str) -> str:
        """Apply a due step through the ``step_to`` path (validation, redirects, history,
        signals with ``run_action=True`` and the step's ``data``). Called by the engine's job;
        safe to call any number of times. Returns the outcome: ``"applied"``, ``"dropped"``
        (if_unchanged and the user moved on), ``"failed"`` (recorded with the reason, not
        retried), ``"gone"`` (already applied or cancelled: nothing done), ``"early"`` (handed
        back to the engine) or ``"retried"`` (another owner holds the user's lock: handed back
        to the engine for STEP_LOCKED_RETRY_DELAY seconds later, at most STEP_LOCKED_RETRIES
        times, then failed).

        Raises SessionStoreUnavailable/SessionConflict with the step still pending (the
        engine's retry or the sweep runs it again), and re-raises what a signal receiver or
        ``@on_enter`` action raised, after recording it."""
        validate_user_id(user_id)
        try:
            outcome = self._run_step(user_id, step_id)
        except SessionStoreUnavailable:
            metrics.store_unavailable("scheduler")
            metrics.scheduled_step("error")
            raise
        except SessionConflict:
            metrics.scheduled_step("error")
            raise
        return outcome

    def _run_step(self, user_id: str, step_id: str) -> str:
        record = self.store.step(user_id, step_id)
        if record is None:
            self.store.forget_step(user_id, step_id)
            metrics.scheduled_step(GONE)
            return GONE
        step = self._scheduled_step(user_id, step_id, record)
        if step.due > timezone.now():
            # Engines round times (RQ: to the second) and hosts' clocks differ: not yet.
            self._hand_off(step)
            metrics.scheduled_step(EARLY)
            return EARLY
        try:
            # Validated again: the flow map may have changed since the step was scheduled.
            target = self.service._checked(step.target)
        except StealthSessionsError as exc:
            self._remove_step(step, FAILED, f"Target {step.target!r} is no longer valid: {exc}")
            metrics.scheduled_step(FAILED)
            return FAILED
        try:
            # Never the lock's owner, even when an engine runs it in the code holding a lock.
            with origin("scheduler"), locking.no_owner():
                self.service._run(
                    self.service._transition(
                        user_id,
                        lambda current: target,
                        method=step.method,
                        run_action=True,
                        update=False,
                        expected_version=None,
                        needs_current=False,
                        step=(step.id, step.if_unchanged, step.source),
                        data=step.data,
                    )
                )
        except SessionInterrupted as exc:
            return self._retry_locked(step, record, exc)
        except StepNotApplied as exc:
            if not exc.dropped:
                metrics.scheduled_step(GONE)
                return GONE  # applied or cancelled by someone else meanwhile
            self._record_outcome(
                step,
                DROPPED,
                f"if_unchanged: the user is at {exc.current or '(no session)'}, "
                f"not {step.source or '(no session)'}",
            )
            metrics.scheduled_step(DROPPED)
            return DROPPED
        except (SessionStoreUnavailable, SessionConflict):
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            if self._remove_step(step, FAILED, f"A pre_transition receiver raised {why}"):
                metrics.scheduled_step(FAILED)
            else:
                # Taken by the write: applied, then a post_transition receiver or action raised.
                self._record_outcome(step, APPLIED, f"Applied, then a receiver raised {why}")
                metrics.scheduled_step(APPLIED, (timezone.now() - step.due).total_seconds())
            raise
        self._record_outcome(step, APPLIED, _after_retries(step))
        metrics.scheduled_step(APPLIED, (timezone.now() - step.due).total_seconds())
        return APPLIED

    def _retry_locked(
        self, step: ScheduledStep, record: dict[str, Any], exc: SessionInterrupted
    ) -> str:
        """The user is locked by another owner (mid-action): hand the step back to the engine
        for a little later, counting the retries in its record; after the last, fail it."""
        retries = step.retries + 1
        if retries > self.locked_retries:
            holder = getattr(exc.lock, "holder", "another owner")
            self._remove_step(
                step,
                FAILED,
                f"The user stayed locked (by {holder}) through {step.retries} retries",
            )
            metrics.scheduled_step(FAILED)
            return FAILED
        if not self.store.retry_step(step.user_id, step.id, {**record, "retries": retries}):
            metrics.scheduled_step(GONE)
            return GONE  # cancelled meanwhile
        later = timezone.now() + timedelta(seconds=self.locked_retry_delay)
        self._hand_off(replace(step, due=later, retries=retries), again=True)
        metrics.scheduled_step(RETRIED)
        return RETRIED

    def sweep_scheduled(self, grace: float, *, batch: int = 1000) -> int:
        """Hand to the engine again every pending step due more than ``grace`` seconds ago:
        its job was lost (engine data flushed, a failed enqueue, a killed worker). A step whose
        job was merely slow still applies once. Returns how many were handed over; each is
        looked at again only after another ``grace``."""
        now = to_ms(timezone.now())
        handed = 0
        while True:
            claimed = self.store.claim_overdue_steps(now - int(grace * 1000), now, batch)
            for (user_id, step_id), record in zip(claimed, self.store.steps_of(claimed)):
                if record is None:
                    self.store.forget_step(user_id, step_id)
                else:
                    self._hand_off(self._scheduled_step(user_id, step_id, record))
                    handed += 1
            if len(claimed) < batch:
                return handed

    def oldest_overdue(self) -> datetime | None:
        """The due time of the oldest step still pending although due, as found from the
        first step of each shard's sweep index (None: none is due). For health checks."""
        now = to_ms(timezone.now())
        found = self.store.first_due_steps(now)
        dues = [record["due"] for record in self.store.steps_of(found) if record is not None]
        overdue = [due for due in dues if due <= now]
        return from_ms(min(overdue)) if overdue else None

    def _schedule(
        self,
        user_id: str,
        due: datetime,
        target_args: tuple[str | None, str | None, str | None, Session | None],
        if_unchanged: bool,
        *,
        method: str,
        data: dict[str, Any] | None = None,
    ) -> Plan[ScheduledStep]:
        validate_user_id(user_id)
        encoded = encode_data(data)
        self.require_engine()
        slug, flow, state, session = target_args
        resolve = self.service._target_resolver(slug, flow, state, session)
        current = None
        if state is not None and flow is None:
            current = yield from self.service._peek(user_id)
        target = resolve(current)
        now = to_ms(timezone.now())
        due_ms = to_ms(due)
        step_id = uuid4().hex
        source = yield from self.store.plan_add_step(
            user_id,
            step_id,
            target,
            due_ms=due_ms,
            created_ms=now,
            if_unchanged=bool(if_unchanged),
            method=method,
            # A step due in the past fires promptly: the sweep waits a grace from now.
            sweep_after_ms=max(due_ms, now),
            data=encoded,
        )
        step = ScheduledStep(
            id=step_id,
            user_id=user_id,
            target=target,
            due=from_ms(due_ms),
            created=from_ms(now),
            if_unchanged=bool(if_unchanged),
            method=method,
            source=source,
            data=None if encoded is None else json.loads(encoded),
        )
        yield HandOff(step)
        yield Send(signals.step_scheduled, {"user_id": user_id, "step": step})
        return step

    def require_engine(self) -> None:
        """ImproperlyConfigured, saying how to fix it, unless an engine can run steps here:
        checked before a step is stored, so none is stored that would never run."""
        if self.scheduler is None:
            raise ImproperlyConfigured(
                "Scheduled steps need an engine, and STEALTH_SESSIONS['SCHEDULER'] is None "
                f"(the default): set it to {engines_hint()}."
            )
        missing = self.scheduler.unavailable()
        if missing is not None:
            raise ImproperlyConfigured(
                f"STEALTH_SESSIONS['SCHEDULER'] = {conf.SCHEDULER!r}: {missing}. Install it, "
                f"or choose another engine: {engines_hint()}."
            )

    # -- the engine: sync calls directly, async ones awaited (StepScheduler.aenqueue...) ------

    def engine_call(self, effect: HandOff | CancelJob) -> None:
        if type(effect) is HandOff:
            self._hand_off(effect.step, again=effect.again)
        elif self.scheduler is not None:
            try:
                self.scheduler.cancel(effect.step)
            except Exception:
                # Harmless: a job delivered after the cancel finds no step and does nothing.
                logger.exception("Could not cancel the engine job of step %s", effect.step.id)

    async def aengine_call(self, effect: HandOff | CancelJob) -> None:
        if self.scheduler is None:
            return
        if type(effect) is HandOff:
            try:
                await self.scheduler.aenqueue(effect.step, again=effect.again)
            except Exception:
                logger.exception("Could not hand scheduled step %s to the engine", effect.step.id)
        else:
            try:
                await self.scheduler.acancel(effect.step)
            except Exception:
                logger.exception("Could not cancel the engine job of step %s", effect.step.id)

    def _hand_off(self, step: ScheduledStep, *, again: bool = False) -> None:
        try:
            self.scheduler.enqueue(step, again=again)  # type: ignore[union-attr]
        except Exception:
            # The step is stored: the sweep hands it over again after STEP_SWEEP_GRACE.
            logger.exception("Could not hand scheduled step %s to the engine", step.id)

    def _remove_steps(
        self, user_id: str, step_ids: tuple[str, ...], outcome: str, reason: str
    ) -> Plan[dict[str, dict[str, Any]]]:
        """Remove pending steps (none given: all the user's), recording the outcome; returns
        the records of those this call removed."""
        return self.store.plan_remove_steps(
            user_id,
            step_ids,
            now_ms=to_ms(timezone.now()),
            outcome=outcome,
            reason=reason,
            keep=self.outcomes_length,
            ttl_ms=self.outcomes_ttl * 1000,
        )

    def _cancel_steps(self, user_id: str, step_ids: tuple[str, ...], *, reason: str) -> Plan[int]:
        removed = yield from self._remove_steps(user_id, step_ids, CANCELLED, reason)
        return (yield from self.announce_cancelled(user_id, removed))

    def announce_cancelled(self, user_id: str, removed: dict[str, dict[str, Any]]) -> Plan[int]:
        """Tell the engine (best effort) and the receivers about steps removed as cancelled."""
        for step_id, record in removed.items():
            step = self._scheduled_step(user_id, step_id, record)
            yield CancelJob(step)
            yield Send(signals.scheduled_step_cancelled, {"user_id": user_id, "step": step})
        return len(removed)

    def _remove_step(self, step: ScheduledStep, outcome: str, reason: str) -> bool:
        """Remove a still-pending step, recording why; False if it was already gone."""
        removed = self.store.run(self._remove_steps(step.user_id, (step.id,), outcome, reason))
        if removed:
            logger.warning("Step %s of %r %s: %s", step.id, step.user_id, outcome, reason)
        return bool(removed)

    def _record_outcome(self, step: ScheduledStep, outcome: str, reason: str) -> None:
        self.store.record_step_outcome(
            step.user_id,
            (to_ms(timezone.now()), step.id, step.target, outcome, reason, step.retries),
            keep=self.outcomes_length,
            ttl_ms=self.outcomes_ttl * 1000,
        )

    def from_records(self, user_id: str, records: dict[str, dict[str, Any]]) -> list[ScheduledStep]:
        steps = [self._scheduled_step(user_id, sid, rec) for sid, rec in records.items()]
        return sorted(steps, key=lambda step: (step.due, step.created, step.id))

    def _scheduled_step(self, user_id: str, step_id: str, record: dict[str, Any]) -> ScheduledStep:
        return ScheduledStep(
            id=step_id,
            user_id=user_id,
            target=record["target"],
            due=from_ms(record["due"]),
            created=from_ms(record["created"]),
            if_unchanged=bool(record["if_unchanged"]),
            method=record.get("method") or "step_to_in",
            source=record.get("source") or None,
            data=json.loads(record["data"]) if record.get("data") else None,
            retries=int(record.get("retries") or 0),
        )


def _after_retries(step: ScheduledStep) -> str:
    if not step.retries:
        return ""
    times = "once" if step.retries == 1 else f"{step.retries} times"
    return f"Retried {times}: the user was locked by another owner"
