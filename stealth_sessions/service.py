"""SessionService: the only write path. Validates, writes through the store, sends signals."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils import timezone
from django.utils.module_loading import import_string

from . import signals
from .conf import conf
from .exceptions import (
    InvalidSchedule,
    InvalidSlug,
    InvalidStateTransition,
    InvalidUserId,
    NoBackToSession,
    SessionConflict,
    SessionStoreUnavailable,
    StealthSessionsError,
)
from .flows import FlowMap
from .slugs import parse, slugify
from .store import (
    CONFLICT,
    NO_SESSION,
    SLID,
    STEP_DROPPED,
    STEP_GONE,
    UNCHANGED,
    RedisStore,
    Row,
    decode,
    from_cache,
)
from .values import ScheduledStep, Session, StepOutcome, Transition

if TYPE_CHECKING:
    from .scheduling.base import StepScheduler

__all__ = ["Session", "SessionService", "Transition", "get_session_service", "validate_user_id"]

MAX_USER_ID_LENGTH = 256
# Whitespace and control characters (C0, DEL, C1) would break redis-cli use and log lines.
_BAD_USER_ID_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def validate_user_id(user_id: object) -> str:
    """Return ``user_id`` if acceptable, else raise InvalidUserId saying why."""
    if type(user_id) is not str:
        raise InvalidUserId(f"A user id must be a string, not {type(user_id).__name__}")
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidUserId(
            f"A user id must have 1 to {MAX_USER_ID_LENGTH} characters, not {len(user_id)}"
        )
    if _BAD_USER_ID_CHAR.search(user_id):
        raise InvalidUserId(f"User id {user_id[:40]!r} contains whitespace or a control character")
    if not user_id.isascii():
        try:
            user_id.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUserId(f"User id {user_id[:40]!r} is not valid Unicode") from None
    return user_id


class SessionService:
    """Stealth's session model over Redis. Methods take ``user_id`` first; targets are given as
    exactly one of ``slug=``, ``flow=`` (optionally with ``state=``), ``state=`` alone (stays in
    the current flow) or ``session=``."""

    def __init__(
        self,
        store: RedisStore,
        *,
        flow_map: FlowMap | None = None,
        ttl: int | None = None,
        history_length: int = 50,
        lock_timeout: float = 30,
        conflict_retries: int = 20,
        scheduler: StepScheduler | None = None,
        step_outcomes_length: int = 20,
        step_outcomes_ttl: int = 30 * 24 * 3600,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.step_outcomes_length = step_outcomes_length
        self.step_outcomes_ttl = step_outcomes_ttl
        self.flow_map = flow_map
        self._slugs: dict[bytes, tuple[str, str | None, str | None, str | None]] = {}
        self._slugs_generation = -1
        self.ttl = ttl
        self._ttl_ms = ttl * 1000 if ttl else None
        self.history_length = history_length
        self.lock_timeout = lock_timeout
        self.conflict_retries = conflict_retries
        # Bumped by every scheduling or cancelling call: tells a write whose scheduled_out was
        # read in its script whether a post_transition action changed the steps since.
        self._steps_changes = 0

    # -- reading -------------------------------------------------------------------------

    def get(self, user_id: str) -> Session | None:
        """The user's session, or None; slides the expiry of all the user's keys together.
        A session left on a state that now redirects (renamed in a deploy) is moved on."""
        row = self.store.read(validate_user_id(user_id), self._ttl_ms, True)
        if row is None:
            return None
        session = self._session(user_id, row)
        landing = self._stored_slug(row[1])[3]
        if landing is not None and landing != session.slug:
            return self._redirect(session, landing)
        return session

    def get_with_scheduled(self, user_id: str) -> tuple[Session | None, list[ScheduledStep]]:
        """``(get(user_id), scheduled_steps(user_id))`` in one round trip."""
        row, records = self.store.read_with_steps(validate_user_id(user_id), self._ttl_ms, True)
        if row is None:
            return None, self._scheduled_list(user_id, records)
        session = self._session(user_id, row)
        landing = self._stored_slug(row[1])[3]
        if landing is not None and landing != session.slug:
            return self._redirect(session, landing), self.scheduled_steps(user_id)
        return session, self._scheduled_list(user_id, records)

    def peek(self, user_id: str) -> Session | None:
        """The user's session, or None, without touching expiry or indexes (for admin screens)."""
        row = self.store.read(validate_user_id(user_id), None, False)
        return None if row is None else self._session(user_id, row)

    def history(self, user_id: str, limit: int = 50) -> list[Transition]:
        """The latest transitions, newest first (at most HISTORY_LENGTH are kept)."""
        limit = min(limit, self.history_length)
        if limit < 1:
            return []
        return [
            Transition(
                at=datetime.fromtimestamp(ms / 1000, tz=UTC),
                source=source or None,
                target=target,
                method=method,
            )
            for ms, method, source, target in self.store.history(validate_user_id(user_id), limit)
        ]

    def count_by_state(self) -> dict[str, int]:
        """``{slug: number of users}``, expired sessions excluded."""
        return self.store.count_by_state()

    def list_sessions(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Session], str | None]:
        """A page of sessions ordered by user id, and the cursor of the next page (None on the
        last). Exact: expired sessions are excluded. Served from indexes, never a keyspace scan."""
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        want_slug = want_flow = ""
        if slug is not None:
            want_slug = slugify(*parse(slug))
            if flow is not None and parse(slug)[0] != flow:
                return [], None
            index = "slug:" + want_slug
        elif flow is not None:
            want_flow = flow
            slugify(flow, "x")  # validates the flow name
            index = "flow:" + flow
        else:
            index = "all"
        lo, hi = "-", b"+"
        if user_id_prefix:
            validate_user_id(user_id_prefix)
            lo, hi = "[" + user_id_prefix, b"[" + user_id_prefix.encode() + b"\xff"
        if cursor is not None:
            validate_user_id(cursor)
            if not user_id_prefix or cursor >= user_id_prefix:
                lo = "(" + cursor
        rows = self.store.list_sessions(index, lo, hi, limit, want_slug, want_flow)
        sessions = [self._session(decode(row[0]), [3, *row[1:]]) for row in rows[:limit]]  # type: ignore[arg-type]
        next_cursor = sessions[-1].user_id if len(rows) > limit else None
        return sessions, next_cursor

    # -- transitions ---------------------------------------------------------------------

    def step_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        """Move the user and run the target state's action (``run_action=True``).
        ``scheduled_out``: a list, filled with the user's pending steps read
        in the same round trip (as ``scheduled_steps()``)."""
        if slug is not None and flow is state is session is scheduled_out is None:
            return self._to_slug(user_id, slug, "step_to", True, False, expected_version)
        return self._transition(
            user_id,
            self._target_resolver(slug, flow, state, session),
            method="step_to",
            run_action=True,
            update=False,
            expected_version=expected_version,
            needs_current=state is not None and flow is None,
            scheduled_out=scheduled_out,
        )

    def update_session_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        """Move the user without running the target state's action (``run_action=False``).
        ``scheduled_out``: as ``step_to``."""
        if slug is not None and flow is state is session is scheduled_out is None:
            return self._to_slug(user_id, slug, "update_session_to", False, True, expected_version)
        return self._transition(
            user_id,
            self._target_resolver(slug, flow, state, session),
            method="update_session_to",
            run_action=False,
            update=True,
            expected_version=expected_version,
            needs_current=state is not None and flow is None,
            scheduled_out=scheduled_out,
        )

    def step_back(
        self,
        user_id: str,
        *,
        expected_version: int | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        """Step to the stored back-to session (which stays in place). ``scheduled_out``: as
        ``step_to``."""

        def back_to(current: Session | None) -> str:
            if current is None or current.back_to is None:
                raise NoBackToSession(f"User {user_id!r} has no back-to session to step back to")
            return self._checked(current.back_to)

        return self._transition(
            user_id,
            back_to,
            method="step_back",
            run_action=True,
            update=False,
            expected_version=expected_version,
            needs_current=True,
            scheduled_out=scheduled_out,
        )

    def set_back_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        """Store the session ``step_back`` returns to. Not a transition: no signals, no history.
        ``scheduled_out``: as ``step_to``."""
        validate_user_id(user_id)
        resolve = self._target_resolver(slug, flow, state, session)
        if state is not None and flow is None:
            current = self.peek(user_id)
            target = resolve(current)
            if expected_version is None and current is not None:
                expected_version = current.version
        else:
            target = resolve(None)
        row = self.store.set_back_to(
            user_id,
            target,
            expected_version=expected_version,
            ttl_ms=self._ttl_ms,
            with_steps=scheduled_out is not None,
        )
        if len(row) > 6:
            scheduled_out[:] = self._scheduled_list(user_id, row.pop())  # type: ignore[index]
        if row[0] == NO_SESSION:
            raise InvalidStateTransition(f"User {user_id!r} has no session to set a back-to on")
        if row[0] == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        return self._session(user_id, row)

    def reset(self, user_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the user's session, previous, back-to and history. True if there was one."""
        row, cancelled = self.store.reset(
            validate_user_id(user_id),
            expected_version=expected_version,
            keep=self.step_outcomes_length,
            ttl_ms=self.step_outcomes_ttl * 1000,
        )
        if row[0] == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        self._announce_cancelled(user_id, cancelled)
        if row[0] == UNCHANGED:
            return False
        signals.session_reset.send(
            sender=SessionService, user_id=user_id, session=self._session(user_id, row)
        )
        return True

    # -- scheduled steps (step_to_in / step_to_at) -----------------------------------------
    # The app keeps pending steps in Redis itself (store: <user>:steps, idx:steps; no TTL), so
    # they can be listed and cancelled without asking the engine. The engine (self.scheduler,
    # see stealth_sessions/scheduling/) is only told "run step S of user U at T"; it may
    # deliver that late, twice or after a cancel: run_scheduled_step() applies a step at most
    # once, because transition.lua takes the step's record in the script that writes.

    def step_to_in(
        self,
        user_id: str,
        delay: timedelta | float,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        if_unchanged: bool = False,
    ) -> ScheduledStep:
        """Schedule a ``step_to`` in ``delay`` (a timedelta or seconds, > 0). The target is
        resolved and validated now; the session is not changed. With ``if_unchanged`` the step
        fires only if the user is then still at the slug they are at now."""
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
        target = (slug, flow, state, session)
        return self._schedule(user_id, due, target, if_unchanged, method="step_to_in")

    def step_to_at(
        self,
        user_id: str,
        when: datetime,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        if_unchanged: bool = False,
    ) -> ScheduledStep:
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
        target = (slug, flow, state, session)
        return self._schedule(user_id, when, target, if_unchanged, method="step_to_at")

    def scheduled_steps(self, user_id: str) -> list[ScheduledStep]:
        """The user's pending steps, soonest first."""
        return self._scheduled_list(user_id, self.store.steps(validate_user_id(user_id)))

    def cancel_scheduled(self, user_id: str, step_id: str | None = None) -> int:
        """Cancel one pending step (``step_id``) or all of the user's; returns how many were
        cancelled (0 for an unknown, applied or already cancelled step)."""
        validate_user_id(user_id)
        if step_id is None:
            return self._cancel_steps(user_id, (), reason="cancelled")
        if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
            return 0
        return self._cancel_steps(user_id, (step_id,), reason="cancelled")

    def scheduled_step_outcomes(self, user_id: str, limit: int = 20) -> list[StepOutcome]:
        """What became of the user's latest steps, newest first (at most
        STEP_OUTCOMES_LENGTH are kept, for STEP_OUTCOMES_TTL seconds)."""
        if limit < 1:
            return []
        return [
            StepOutcome(at=_datetime(at), step_id=sid, target=target, outcome=what, reason=why)
            for at, sid, target, what, why in self.store.step_outcomes(
                validate_user_id(user_id), limit
            )
        ]

    def run_scheduled_step(self, user_id: str, step_id: str) -> str:
        """Apply a due step through the ``step_to`` path (validation, redirects, history,
        signals with ``run_action=True``). Called by the engine's job; safe to call any number
        of times. Returns the outcome: ``"applied"``, ``"dropped"`` (if_unchanged and the
        user moved on), ``"failed"`` (recorded with the reason, not retried), ``"gone"``
        (already applied or cancelled: nothing done) or ``"early"`` (handed back to the engine).

        Raises SessionStoreUnavailable/SessionConflict with the step still pending (the
        engine's retry or the sweep runs it again), and re-raises what a signal receiver or
        ``@on_enter`` action raised, after recording it."""
        validate_user_id(user_id)
        record = self.store.step(user_id, step_id)
        if record is None:
            self.store.forget_step(user_id, step_id)
            return GONE
        step = self._scheduled_step(user_id, step_id, record)
        if step.due > timezone.now():
            # Engines round times (RQ: to the second) and hosts' clocks differ: not yet.
            self._hand_off(step)
            return EARLY
        try:
            # Validated again: the flow map may have changed since the step was scheduled.
            target = self._checked(step.target)
        except StealthSessionsError as exc:
            self._remove_step(step, FAILED, f"Target {step.target!r} is no longer valid: {exc}")
            return FAILED
        try:
            self._transition(
                user_id,
                lambda current: target,
                method=step.method,
                run_action=True,
                update=False,
                expected_version=None,
                needs_current=False,
                step=(step.id, step.if_unchanged, step.source),
            )
        except _StepNotApplied as exc:
            if exc.status != STEP_DROPPED:
                return GONE  # applied or cancelled by someone else meanwhile
            self._record_outcome(
                step,
                DROPPED,
                f"if_unchanged: the user is at {exc.current or '(no session)'}, "
                f"not {step.source or '(no session)'}",
            )
            return DROPPED
        except (SessionStoreUnavailable, SessionConflict):
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            if not self._remove_step(step, FAILED, f"A pre_transition receiver raised {why}"):
                # Taken by the write: applied, then a post_transition receiver or action raised.
                self._record_outcome(step, APPLIED, f"Applied, then a receiver raised {why}")
            raise
        self._record_outcome(step, APPLIED, "")
        return APPLIED

    def sweep_scheduled(self, grace: float, *, batch: int = 1000) -> int:
        """Hand to the engine again every pending step due more than ``grace`` seconds ago:
        its job was lost (engine data flushed, a failed enqueue, a killed worker). A step whose
        job was merely slow still applies once. Returns how many were handed over; each is
        looked at again only after another ``grace``."""
        now = _ms(timezone.now())
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

    def _schedule(
        self,
        user_id: str,
        due: datetime,
        target_args: tuple[str | None, str | None, str | None, Session | None],
        if_unchanged: bool,
        *,
        method: str,
    ) -> ScheduledStep:
        validate_user_id(user_id)
        if self.scheduler is None:
            raise ImproperlyConfigured(
                "Scheduled steps need an engine: set STEALTH_SESSIONS['SCHEDULER'] (default "
                "'stealth_sessions.scheduling.rq_engine.RQStepScheduler')"
            )
        slug, flow, state, session = target_args
        resolve = self._target_resolver(slug, flow, state, session)
        target = resolve(self.peek(user_id) if state is not None and flow is None else None)
        now = _ms(timezone.now())
        due_ms = _ms(due)
        step_id = uuid4().hex
        source = self.store.add_step(
            user_id,
            step_id,
            target,
            due_ms=due_ms,
            created_ms=now,
            if_unchanged=bool(if_unchanged),
            method=method,
            # A step due in the past fires promptly: the sweep waits a grace from now.
            sweep_after_ms=max(due_ms, now),
        )
        self._steps_changes += 1
        step = ScheduledStep(
            id=step_id,
            user_id=user_id,
            target=target,
            due=_datetime(due_ms),
            created=_datetime(now),
            if_unchanged=bool(if_unchanged),
            method=method,
            source=source,
        )
        self._hand_off(step)
        signals.step_scheduled.send(sender=SessionService, user_id=user_id, step=step)
        return step

    def _hand_off(self, step: ScheduledStep) -> None:
        try:
            self.scheduler.enqueue(step)  # type: ignore[union-attr]
        except Exception:
            # The step is stored: the sweep hands it over again after STEP_SWEEP_GRACE.
            logger.exception("Could not hand scheduled step %s to the engine", step.id)

    def _cancel_steps(self, user_id: str, step_ids: tuple[str, ...], *, reason: str) -> int:
        removed = self.store.remove_steps(
            user_id,
            step_ids,
            now_ms=_ms(timezone.now()),
            outcome=CANCELLED,
            reason=reason,
            keep=self.step_outcomes_length,
            ttl_ms=self.step_outcomes_ttl * 1000,
        )
        self._steps_changes += 1
        return self._announce_cancelled(user_id, removed)

    def _announce_cancelled(self, user_id: str, removed: dict[str, dict[str, Any]]) -> int:
        """Tell the engine (best effort) and the receivers about steps removed as cancelled."""
        for step_id, record in removed.items():
            step = self._scheduled_step(user_id, step_id, record)
            if self.scheduler is not None:
                try:
                    self.scheduler.cancel(step)
                except Exception:
                    # Harmless: a job delivered after the cancel finds no step and does nothing.
                    logger.exception("Could not cancel the engine job of step %s", step.id)
            signals.scheduled_step_cancelled.send(sender=SessionService, user_id=user_id, step=step)
        return len(removed)

    def _remove_step(self, step: ScheduledStep, outcome: str, reason: str) -> bool:
        """Remove a still-pending step, recording why; False if it was already gone."""
        removed = self.store.remove_steps(
            step.user_id,
            (step.id,),
            now_ms=_ms(timezone.now()),
            outcome=outcome,
            reason=reason,
            keep=self.step_outcomes_length,
            ttl_ms=self.step_outcomes_ttl * 1000,
        )
        self._steps_changes += 1
        if removed:
            logger.warning("Step %s of %r %s: %s", step.id, step.user_id, outcome, reason)
        return bool(removed)

    def _record_outcome(self, step: ScheduledStep, outcome: str, reason: str) -> None:
        self.store.record_step_outcome(
            step.user_id,
            (_ms(timezone.now()), step.id, step.target, outcome, reason),
            keep=self.step_outcomes_length,
            ttl_ms=self.step_outcomes_ttl * 1000,
        )

    def _scheduled_list(
        self, user_id: str, records: dict[str, dict[str, Any]]
    ) -> list[ScheduledStep]:
        steps = [self._scheduled_step(user_id, sid, rec) for sid, rec in records.items()]
        return sorted(steps, key=lambda step: (step.due, step.created, step.id))

    def _scheduled_step(self, user_id: str, step_id: str, record: dict[str, Any]) -> ScheduledStep:
        return ScheduledStep(
            id=step_id,
            user_id=user_id,
            target=record["target"],
            due=_datetime(record["due"]),
            created=_datetime(record["created"]),
            if_unchanged=bool(record["if_unchanged"]),
            method=record.get("method") or "step_to_in",
            source=record.get("source") or None,
        )

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def lock(
        self, user_id: str, timeout: float | None = None, blocking_timeout: float | None = None
    ) -> Iterator[None]:
        """A per-user lock with an owner token, auto-released after ``timeout`` seconds.
        Waits up to ``blocking_timeout`` seconds (None: until acquired), then SessionLocked."""
        with self.store.lock(
            validate_user_id(user_id),
            timeout=self.lock_timeout if timeout is None else timeout,
            blocking_timeout=blocking_timeout,
        ):
            yield

    def is_locked(self, user_id: str) -> bool:
        return self.store.is_locked(validate_user_id(user_id))

    # -- internals -----------------------------------------------------------------------

    def _session(self, user_id: str, row: Row) -> Session:
        _, cur, prev, back, version, pttl = row
        slug, flow, state, _landing = self._stored_slug(cur)
        return Session(  # positional: twice as fast as keywords, and this is the hot path
            user_id,
            slug,
            flow,
            state,
            None if prev is None else prev.decode("utf-8", "replace"),
            None if back is None else back.decode("utf-8", "replace"),
            version,
            None if pttl < 0 else -(-pttl // 1000),
        )

    def _stored_slug(self, raw: bytes) -> tuple[str, str | None, str | None, str | None]:
        """(slug, flow, state, landing) for a slug as stored: flow and state None when it is
        malformed or unknown to the flow map; landing, where a step into it lands (None if
        nowhere). Memoized: a bot has few slugs, and this runs on every read."""
        generation = -1 if self.flow_map is None else self.flow_map.generation
        if generation != self._slugs_generation:
            self._slugs.clear()
            self._slugs_generation = generation
        try:
            return self._slugs[raw]
        except KeyError:
            pass
        slug = raw.decode("utf-8", "replace")
        flow = state = landing = None
        with suppress(InvalidSlug):
            flow, state = parse(slug)
            landing = slug
        if self.flow_map is not None:
            landing = self.flow_map.landing(slug)
            if slug not in self.flow_map:
                flow = state = None
        if len(self._slugs) < 10_000:  # hand-written garbage must not grow it for ever
            self._slugs[raw] = (slug, flow, state, landing)
        return slug, flow, state, landing

    def _checked(self, slug: str) -> str:
        """Validate ``slug`` against the flow map and follow its redirects."""
        if self.flow_map is None:
            parse(slug)
            return slug
        return self.flow_map.resolve(slug)

    def _target_resolver(
        self,
        slug: str | None,
        flow: str | None,
        state: str | None,
        session: Session | None,
    ) -> Callable[[Session | None], str]:
        """Check the target's form now; return a function giving the final slug, validated."""
        kinds = sum(x is not None for x in (slug, session, flow)) + (
            flow is None and state is not None
        )
        if kinds != 1:
            raise TypeError(
                "Give exactly one target: slug=, flow= (optionally with state=), state= alone, "
                "or session="
            )
        if slug is not None:
            target = self._checked(slug)
            return lambda current: target
        if session is not None:
            if not isinstance(session, Session):
                raise TypeError(f"session= takes a Session, not {type(session).__name__}")
            target = self._checked(session.slug)
            return lambda current: target
        if flow is not None:
            if state is None:
                if self.flow_map is None:
                    raise InvalidStateTransition(
                        f"flow={flow!r} alone needs a flow map to know its first state; "
                        "set STEALTH_SESSIONS['FLOW_MAP'] or give state="
                    )
                state = self.flow_map.initial_state(flow)
            target = self._checked(slugify(flow, state))
            return lambda current: target
        slugify("flow", state)  # type: ignore[arg-type]  # validates the state name now

        def in_current_flow(current: Session | None) -> str:
            if current is None or current.flow is None:
                raise InvalidStateTransition(
                    f"state={state!r} alone stays in the current flow, but the user has "
                    + ("no session" if current is None else f"the unusable slug {current.slug!r}")
                )
            return self._checked(slugify(current.flow, state))  # type: ignore[arg-type]

        return in_current_flow

    def _transition(
        self,
        user_id: str,
        resolve: Callable[[Session | None], str],
        *,
        method: str,
        run_action: bool,
        update: bool,
        expected_version: int | None,
        needs_current: bool,
        step: tuple[str, bool, str | None] | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        validate_user_id(user_id)
        out = scheduled_out
        if not needs_current and not signals.pre_transition.has_listeners(SessionService):
            # The fast path: one round trip; the script knows the source.
            target = resolve(None)
            row = self._write(user_id, target, update, expected_version, method, step, out)
            return self._after(user_id, row, target, method, run_action, expected_version, out)
        # Read first (the target or pre_transition's source needs it), then write only if the
        # version is still the one read; on a race, read again.
        for _ in range(self.conflict_retries):
            current = self.peek(user_id)
            version = 0 if current is None else current.version
            if expected_version is not None and version != expected_version:
                raise SessionConflict(user_id, expected_version, version)
            target = resolve(current)
            source = None if current is None else current.slug
            if update and source == target:
                if out is not None:
                    out[:] = self.scheduled_steps(user_id)
                return current  # type: ignore[return-value]
            signals.pre_transition.send(
                sender=SessionService,
                user_id=user_id,
                source=source,
                target=target,
                method=method,
                run_action=run_action,
            )
            row = self._write(user_id, target, update, version, method, step, out)
            if row[0] != CONFLICT:
                return self._after(user_id, row, target, method, run_action, version, out)
        raise SessionConflict(user_id, version, row[1])

    def _to_slug(
        self,
        user_id: str,
        slug: str,
        method: str,
        run_action: bool,
        update: bool,
        expected_version: int | None,
    ) -> Session:
        """The hot path of step_to/update_session_to: a slug target and no pre_transition
        receiver make one store call, with as little Python around it as can be."""
        validate_user_id(user_id)
        target = self._checked(slug)
        if signals.pre_transition.has_listeners(SessionService):
            return self._transition(
                user_id,
                lambda current: target,
                method=method,
                run_action=run_action,
                update=update,
                expected_version=expected_version,
                needs_current=False,
            )
        row = self._write(user_id, target, update, expected_version, method)
        return self._after(user_id, row, target, method, run_action, expected_version)

    def _write(
        self,
        user_id: str,
        target: str,
        update: bool,
        expected: int | None,
        method: str,
        step: tuple[str, bool, str | None] | None = None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Row:
        row = self.store.transition(
            user_id,
            target,
            update=update,
            expected_version=expected,
            ttl_ms=self._ttl_ms,
            method=method,
            history_length=self.history_length,
            step=step,
            with_steps=scheduled_out is not None,
        )
        if len(row) > 6:
            scheduled_out[:] = self._scheduled_list(user_id, row.pop())  # type: ignore[index]
        return row

    def _after(
        self,
        user_id: str,
        row: Row,
        target: str,
        method: str,
        run_action: bool,
        expected_version: int | None,
        scheduled_out: list[ScheduledStep] | None = None,
    ) -> Session:
        status = row[0]
        if status == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        if status in (STEP_GONE, STEP_DROPPED):
            raise _StepNotApplied(status, decode(row[1]) if len(row) > 1 else None)
        session = self._session(user_id, row)
        if status == UNCHANGED:
            return session
        source = session.slug if status == SLID else session.previous
        changes = self._steps_changes
        signals.post_transition.send(
            sender=SessionService,
            user_id=user_id,
            source=source,
            target=target,
            method=method,
            run_action=run_action,
            session=session,
        )
        if scheduled_out is not None and self._steps_changes != changes:
            # An action (an on_enter, say) scheduled or cancelled steps after the script read
            # them: read them again.
            scheduled_out[:] = self.scheduled_steps(user_id)
        return session

    def _redirect(self, session: Session, target: str) -> Session:
        try:
            return self._transition(
                session.user_id,
                lambda current: target,
                method="redirect",
                run_action=False,
                update=True,
                expected_version=session.version,
                needs_current=False,
            )
        except SessionConflict:
            # Someone else moved the user meanwhile: their write wins; show it.
            return self.get(session.user_id)  # type: ignore[return-value]


# -- the configured service ----------------------------------------------------------------

_service: SessionService | None = None


def load_flow_map(path: str | None) -> FlowMap | None:
    """Import ``STEALTH_SESSIONS['FLOW_MAP']``; ImproperlyConfigured saying why if it fails."""
    if path is None:
        return None
    try:
        flow_map = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"STEALTH_SESSIONS['FLOW_MAP'] = {path!r} could not be imported: {exc}"
        ) from exc
    if not isinstance(flow_map, FlowMap):
        raise ImproperlyConfigured(
            f"STEALTH_SESSIONS['FLOW_MAP'] = {path!r} is a {type(flow_map).__name__}, "
            "not a stealth_sessions.flows.FlowMap"
        )
    return flow_map


def get_session_service() -> SessionService:
    """The SessionService configured by ``STEALTH_SESSIONS`` (built once, rebuilt when the
    settings change)."""
    global _service
    if _service is None:
        _service = SessionService(
            from_cache(conf.CACHE, conf.KEY_NAMESPACE),
            flow_map=load_flow_map(conf.FLOW_MAP),
            ttl=conf.SESSION_TTL,
            history_length=conf.HISTORY_LENGTH,
            lock_timeout=conf.LOCK_TIMEOUT,
            conflict_retries=conf.CONFLICT_RETRIES,
            scheduler=load_scheduler(conf.SCHEDULER),
            step_outcomes_length=conf.STEP_OUTCOMES_LENGTH,
            step_outcomes_ttl=conf.STEP_OUTCOMES_TTL,
        )
    return _service


def _forget_service(*, setting: str, **kwargs: Any) -> None:
    global _service
    if setting in ("STEALTH_SESSIONS", "CACHES"):
        _service = None


setting_changed.connect(_forget_service)


# -- scheduled steps: helpers --------------------------------------------------------------

logger = logging.getLogger("stealth_sessions.scheduling")

# Outcomes of a scheduled step (run_scheduled_step's return values and the recorded outcomes).
APPLIED, DROPPED, FAILED, CANCELLED, GONE, EARLY = (
    "applied", "dropped", "failed", "cancelled", "gone", "early"
)  # fmt: skip
_STEP_ID = re.compile(r"[0-9a-f]{32}")


class _StepNotApplied(Exception):
    """transition.lua refused a scheduled step: STEP_GONE or STEP_DROPPED (``current``: the
    user's slug then). Internal: run_scheduled_step turns it into an outcome."""

    def __init__(self, status: int, current: str | None) -> None:
        self.status = status
        self.current = current
        super().__init__(status, current)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def _datetime(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


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
