"""SessionService: the only write path. Validates, writes through the store, sends signals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from . import metrics, signals
from .browsing import Browsing
from .bulk import BulkOperations
from .conf import conf
from .context import current_origin, origin
from .effects import Actions, Send
from .exceptions import (
    InvalidSlug,
    InvalidStateTransition,
    NoBackToSession,
    SessionConflict,
    SessionInterrupted,
    SessionLocked,
)
from .flows import FlowMap
from .jobs import BulkJobs
from .slugs import parse, slugify
from .steps import ScheduledSteps, StepNotApplied, load_scheduler
from .store import Plan, RedisStore, Status, Stored, Written, decode, from_cache, now_ms
from .transfer import Transfer
from .users import validate_user_id
from .values import (
    BulkOutcome,
    ListedSession,
    LockInfo,
    ScheduledStep,
    Session,
    StepOutcome,
    Transition,
    from_ms,
)

if TYPE_CHECKING:
    from .scheduling.base import StepScheduler

T = TypeVar("T")


__all__ = [
    "Session",
    "SessionService",
    "Transition",
    "get_session_service",
    "origin",
    "validate_user_id",
]


class SessionService:
    """Stealth's session model over Redis. Methods take ``user_id`` first; targets are given as
    exactly one of ``slug=``, ``flow=`` (optionally with ``state=``), ``state=`` alone (stays in
    the current flow) or ``session=``.

    Composed of collaborators, each a public attribute: ``browsing`` (counts and pages),
    ``scheduled`` (scheduled steps) and ``bulk`` (operators' bulk changes); their methods are
    also the service's own. ``transfer`` (export, import, import from Stealth; used by the
    ``stealth_sessions`` command) and ``jobs`` (bulk changes as background jobs,
    stealth_sessions.jobs) are reached through their attributes only."""

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
        step_locked_retries: int = 30,
        step_locked_retry_delay: float = 2,
        catch_all_ttl: int = 900,
    ) -> None:
        self.store = store
        self.flow_map = flow_map
        self.ttl = ttl or None  # 0: never expire, as in Stealth
        self._ttl_ms = ttl * 1000 if ttl else None
        self.history_length = history_length
        self.lock_timeout = lock_timeout
        self.conflict_retries = conflict_retries
        self.catch_all_ttl = catch_all_ttl
        self._slugs: dict[bytes, tuple[str, str | None, str | None, str | None]] = {}
        self._slugs_generation = -1
        self.browsing = Browsing(store, self._session, self._ttl_ms)
        self.scheduled = ScheduledSteps(
            self,
            store,
            scheduler,
            outcomes_length=step_outcomes_length,
            outcomes_ttl=step_outcomes_ttl,
            locked_retries=step_locked_retries,
            locked_retry_delay=step_locked_retry_delay,
        )
        self.bulk = BulkOperations(self)
        self.jobs = BulkJobs(self, store)
        self.transfer = Transfer(self)

    @property
    def scheduler(self) -> StepScheduler | None:
        return self.scheduled.scheduler

    # -- running: each operation is one plan (a generator, see store.Command), run on the
    # sync client by the method and on redis.asyncio by its ``a``-twin. Besides Redis calls,
    # plans yield what they do around them (stealth_sessions.effects): Send (a signal),
    # Actions (the target's @on_enter actions), HandOff and CancelJob (the scheduling
    # engine). Validation, signals and decoding are written once; the runners only execute.

    def _run(self, plan: Plan[T]) -> T:
        return self.store.run(plan, self._do)

    async def _arun(self, plan: Plan[T]) -> T:
        return await self.store.arun(plan, self._ado)

    def _do(self, step: Any) -> Any:
        if type(step) is Send:
            return step.signal.send(sender=SessionService, **step.kwargs)
        if type(step) is Actions:
            return signals.run_actions(step.kwargs)
        return self.scheduled.engine_call(step)

    def _ado(self, step: Any) -> Awaitable[Any]:
        if type(step) is Send:
            return step.signal.asend(sender=SessionService, **step.kwargs)
        if type(step) is Actions:
            return signals.arun_actions(step.kwargs)
        return self.scheduled.aengine_call(step)

    async def aclose(self) -> None:
        """Close this event loop's Redis connections (see RedisStore.aclose)."""
        await self.store.aclose()

    # -- reading -------------------------------------------------------------------------

    def get(self, user_id: str) -> Session | None:
        """The user's session, or None; slides the expiry of all the user's keys together.
        A session left on a state that now redirects (renamed in a deploy) is moved on."""
        return self._run(self._get(user_id))

    async def aget(self, user_id: str) -> Session | None:
        """``get``, on the event loop."""
        return await self._arun(self._get(user_id))

    def _get(self, user_id: str) -> Plan[Session | None]:
        stored = yield from self.store.plan_read(validate_user_id(user_id), self._ttl_ms, True)
        if stored is None:
            return None
        session = self._session(user_id, stored)
        landing = self._stored_slug(stored.current)[3]
        if landing is not None and landing != session.slug:
            return (yield from self._redirect(session, landing))
        return session

    def get_with_scheduled(self, user_id: str) -> tuple[Session | None, list[ScheduledStep]]:
        """``(get(user_id), scheduled_steps(user_id))``, in one round trip when it can."""
        return self._run(self._get_with_scheduled(user_id))

    async def aget_with_scheduled(self, user_id: str) -> tuple[Session | None, list[ScheduledStep]]:
        """``get_with_scheduled``, on the event loop."""
        return await self._arun(self._get_with_scheduled(user_id))

    def _get_with_scheduled(self, user_id: str) -> Plan[tuple[Session | None, list[ScheduledStep]]]:
        stored, records = yield from self.store.plan_read_with_steps(
            validate_user_id(user_id), self._ttl_ms
        )
        steps = self.scheduled.from_records(user_id, records)
        if stored is None:
            return None, steps
        session = self._session(user_id, stored)
        landing = self._stored_slug(stored.current)[3]
        if landing is not None and landing != session.slug:
            session = yield from self._redirect(session, landing)
            return session, (yield from self.scheduled._scheduled_steps(user_id))
        return session, steps

    def peek(self, user_id: str) -> Session | None:
        """The user's session, or None, without touching expiry or indexes (for admin screens)."""
        return self._run(self._peek(user_id))

    async def apeek(self, user_id: str) -> Session | None:
        """``peek``, on the event loop."""
        return await self._arun(self._peek(user_id))

    def _peek(self, user_id: str) -> Plan[Session | None]:
        stored = yield from self.store.plan_read(validate_user_id(user_id), None, False)
        return None if stored is None else self._session(user_id, stored)

    def history(self, user_id: str, limit: int = 50) -> list[Transition]:
        """The latest transitions, newest first (at most HISTORY_LENGTH are kept)."""
        return self._run(self._history(user_id, limit))

    async def ahistory(self, user_id: str, limit: int = 50) -> list[Transition]:
        """``history``, on the event loop."""
        return await self._arun(self._history(user_id, limit))

    def _history(self, user_id: str, limit: int) -> Plan[list[Transition]]:
        limit = min(limit, self.history_length)
        if limit < 1:
            return []
        entries = yield from self.store.plan_history(validate_user_id(user_id), limit)
        return [
            Transition(from_ms(e.at_ms), e.source, e.target, e.method, e.origin) for e in entries
        ]

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
    ) -> Session:
        """Move the user and run the target state's action (``run_action=True``)."""
        return self._run(
            self._move(user_id, slug, flow, state, session, expected_version, "step_to")
        )

    async def astep_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
    ) -> Session:
        """``step_to``, on the event loop (signals sent with ``asend``, async actions awaited)."""
        return await self._arun(
            self._move(user_id, slug, flow, state, session, expected_version, "step_to")
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
    ) -> Session:
        """Move the user without running the target state's action (``run_action=False``)."""
        return self._run(
            self._move(user_id, slug, flow, state, session, expected_version, "update_session_to")
        )

    async def aupdate_session_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
    ) -> Session:
        """``update_session_to``, on the event loop."""
        return await self._arun(
            self._move(user_id, slug, flow, state, session, expected_version, "update_session_to")
        )

    def _move(
        self,
        user_id: str,
        slug: str | None,
        flow: str | None,
        state: str | None,
        session: Session | None,
        expected_version: int | None,
        method: str,
    ) -> Plan[Session]:
        step = method == "step_to"
        if slug is not None and flow is state is session is None:
            return (
                yield from self._to_slug(user_id, slug, method, step, not step, expected_version)
            )
        return (
            yield from self._transition(
                user_id,
                self._target_resolver(slug, flow, state, session),
                method=method,
                run_action=step,
                update=not step,
                expected_version=expected_version,
                needs_current=state is not None and flow is None,
            )
        )

    def step_back(self, user_id: str, *, expected_version: int | None = None) -> Session:
        """Step to the stored back-to session (which stays in place)."""
        return self._run(self._step_back(user_id, expected_version))

    async def astep_back(self, user_id: str, *, expected_version: int | None = None) -> Session:
        """``step_back``, on the event loop."""
        return await self._arun(self._step_back(user_id, expected_version))

    def _step_back(self, user_id: str, expected_version: int | None) -> Plan[Session]:
        def back_to(current: Session | None) -> str:
            if current is None or current.back_to is None:
                raise NoBackToSession(f"User {user_id!r} has no back-to session to step back to")
            return self._checked(current.back_to)

        return (
            yield from self._transition(
                user_id,
                back_to,
                method="step_back",
                run_action=True,
                update=False,
                expected_version=expected_version,
                needs_current=True,
            )
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
    ) -> Session:
        """Store the session ``step_back`` returns to. Not a transition: no signals, no history."""
        return self._run(self._set_back_to(user_id, slug, flow, state, session, expected_version))

    async def aset_back_to(
        self,
        user_id: str,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        expected_version: int | None = None,
    ) -> Session:
        """``set_back_to``, on the event loop."""
        return await self._arun(
            self._set_back_to(user_id, slug, flow, state, session, expected_version)
        )

    def _set_back_to(
        self,
        user_id: str,
        slug: str | None,
        flow: str | None,
        state: str | None,
        session: Session | None,
        expected_version: int | None,
    ) -> Plan[Session]:
        validate_user_id(user_id)
        resolve = self._target_resolver(slug, flow, state, session)
        if state is not None and flow is None:
            current = yield from self._peek(user_id)
            target = resolve(current)
            if expected_version is None and current is not None:
                expected_version = current.version
        else:
            target = resolve(None)
        written = yield from self.store.plan_set_back_to(
            user_id, target, expected_version=expected_version, ttl_ms=self._ttl_ms
        )
        if written.status is Status.INTERRUPTED:
            raise interrupted(user_id, written)
        if written.status is Status.NO_SESSION:
            raise InvalidStateTransition(f"User {user_id!r} has no session to set a back-to on")
        if written.status is Status.CONFLICT:
            raise SessionConflict(user_id, expected_version, written.version)  # type: ignore[arg-type]
        return self._session(user_id, written.session)  # type: ignore[arg-type]

    def reset(self, user_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the user's session, previous, back-to and history, and cancel their
        scheduled steps. True if there was a session."""
        return self._run(self._reset(user_id, expected_version))

    async def areset(self, user_id: str, *, expected_version: int | None = None) -> bool:
        """``reset``, on the event loop."""
        return await self._arun(self._reset(user_id, expected_version))

    def _reset(self, user_id: str, expected_version: int | None) -> Plan[bool]:
        written, cancelled = yield from self.store.plan_reset(
            validate_user_id(user_id),
            expected_version=expected_version,
            keep=self.scheduled.outcomes_length,
            ttl_ms=self.scheduled.outcomes_ttl * 1000,
        )
        if written.status is Status.INTERRUPTED:
            raise interrupted(user_id, written)
        if written.status is Status.CONFLICT:
            raise SessionConflict(user_id, expected_version, written.version)  # type: ignore[arg-type]
        yield from self.scheduled.announce_cancelled(user_id, cancelled)
        if written.session is None:
            return False
        session = self._session(user_id, written.session)
        yield Send(signals.session_reset, {"user_id": user_id, "session": session})
        return True

    # -- catch-all levels (Stealth's catch_all) -------------------------------------------

    def record_failure(self, user_id: str) -> int:
        """Count a failure (the catch-all fired) at the user's current slug; returns its
        level: 1 the first time, 2 the next... Each slug's counter lapses CATCH_ALL_TTL
        seconds (default 900, Stealth's 15 minutes) after its last failure; ``reset`` removes
        them. InvalidStateTransition if the user has no session (nothing is counted)."""
        return self._run(self._record_failure(user_id))

    async def arecord_failure(self, user_id: str) -> int:
        """``record_failure``, on the event loop."""
        return await self._arun(self._record_failure(user_id))

    def _record_failure(self, user_id: str) -> Plan[int]:
        failures = yield from self.store.plan_failures(
            validate_user_id(user_id), record=True, ttl_ms=self.catch_all_ttl * 1000
        )
        if failures.slug is None:
            raise InvalidStateTransition(f"User {user_id!r} has no session to count a failure at")
        return failures.level

    def failure_level(self, user_id: str) -> int:
        """How many failures were counted at the user's current slug within CATCH_ALL_TTL
        of each other (0: none, or no session)."""
        return self._run(self._failure_level(user_id))

    async def afailure_level(self, user_id: str) -> int:
        """``failure_level``, on the event loop."""
        return await self._arun(self._failure_level(user_id))

    def _failure_level(self, user_id: str) -> Plan[int]:
        failures = yield from self.store.plan_failures(
            validate_user_id(user_id), record=False, ttl_ms=self.catch_all_ttl * 1000
        )
        return failures.level

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def lock(
        self, user_id: str, timeout: float | None = None, blocking_timeout: float | None = None
    ) -> Iterator[None]:
        """A per-user lock with an owner token, auto-released after ``timeout`` seconds.
        Waits up to ``blocking_timeout`` seconds (None: until acquired), then SessionLocked.

        While it is held, the user's transitions, back-to writes and resets from any other
        owner (thread, asyncio task, process, the API, the admin, a scheduled step) raise
        SessionInterrupted and write nothing; the code inside the block (and the actions and
        receivers it runs) writes normally, and may enter ``lock(user_id)`` again."""
        with self.store.lock(
            validate_user_id(user_id),
            timeout=self.lock_timeout if timeout is None else timeout,
            blocking_timeout=blocking_timeout,
        ):
            yield

    @asynccontextmanager
    async def alock(
        self, user_id: str, timeout: float | None = None, blocking_timeout: float | None = None
    ) -> AsyncIterator[None]:
        """``lock`` as an async context manager (``async with service.alock(user_id):``); it
        excludes sync holders of the same user's lock too. Owned by the asyncio task (and
        the tasks it creates inside the block): its writes go through, any other owner's
        raise SessionInterrupted; the task may enter ``alock(user_id)`` again."""
        async with self.store.alock(
            validate_user_id(user_id),
            timeout=self.lock_timeout if timeout is None else timeout,
            blocking_timeout=blocking_timeout,
        ):
            yield

    def is_locked(self, user_id: str) -> bool:
        return self._run(self.store.plan_is_locked(validate_user_id(user_id)))

    async def ais_locked(self, user_id: str) -> bool:
        return await self._arun(self.store.plan_is_locked(validate_user_id(user_id)))

    def current_lock(self, user_id: str) -> LockInfo | None:
        """Who holds the user's lock (since, until its auto-release, the slug the user was at
        when it was taken), or None when it is free."""
        return self._run(self.store.plan_current_lock(validate_user_id(user_id)))

    async def acurrent_lock(self, user_id: str) -> LockInfo | None:
        """``current_lock``, on the event loop (``mine``: held by this asyncio task)."""
        return await self._arun(self.store.plan_current_lock(validate_user_id(user_id)))

    # -- the collaborators' methods, on the service (documented there) --------------------

    def count_by_state(self) -> dict[str, int]:
        return self._run(self.browsing.plan_count_by_state())

    async def acount_by_state(self) -> dict[str, int]:
        return await self._arun(self.browsing.plan_count_by_state())

    def browse(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> tuple[list[ListedSession], str | None]:
        return self._run(
            self.browsing.plan_browse(flow, slug, user_id_prefix, cursor, limit, user_id_contains)
        )

    async def abrowse(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> tuple[list[ListedSession], str | None]:
        return await self._arun(
            self.browsing.plan_browse(flow, slug, user_id_prefix, cursor, limit, user_id_contains)
        )

    def list_sessions(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> tuple[list[Session], str | None]:
        return self._run(
            self.browsing.plan_list_sessions(
                flow, slug, user_id_prefix, cursor, limit, user_id_contains
            )
        )

    async def alist_sessions(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> tuple[list[Session], str | None]:
        return await self._arun(
            self.browsing.plan_list_sessions(
                flow, slug, user_id_prefix, cursor, limit, user_id_contains
            )
        )

    def purge_expired(self) -> int:
        """Drop the users whose session expired from the indexes (see Browsing.purge)."""
        return self.browsing.purge_expired()

    def reset_many(self, user_ids: Iterable[str]) -> BulkOutcome:
        return self.bulk.reset_many(user_ids)

    def reset_state(self, slug: str) -> BulkOutcome:
        return self.bulk.reset_state(slug)

    def move_state(self, slug: str, target: str, *, run_action: bool = False) -> BulkOutcome:
        return self.bulk.move_state(slug, target, run_action=run_action)

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
        data: dict[str, Any] | None = None,
    ) -> ScheduledStep:
        return self._run(
            self.scheduled.plan_step_to_in(
                user_id, delay, (slug, flow, state, session), if_unchanged, data
            )
        )

    async def astep_to_in(
        self,
        user_id: str,
        delay: timedelta | float,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        if_unchanged: bool = False,
        data: dict[str, Any] | None = None,
    ) -> ScheduledStep:
        return await self._arun(
            self.scheduled.plan_step_to_in(
                user_id, delay, (slug, flow, state, session), if_unchanged, data
            )
        )

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
        data: dict[str, Any] | None = None,
    ) -> ScheduledStep:
        return self._run(
            self.scheduled.plan_step_to_at(
                user_id, when, (slug, flow, state, session), if_unchanged, data
            )
        )

    async def astep_to_at(
        self,
        user_id: str,
        when: datetime,
        *,
        slug: str | None = None,
        flow: str | None = None,
        state: str | None = None,
        session: Session | None = None,
        if_unchanged: bool = False,
        data: dict[str, Any] | None = None,
    ) -> ScheduledStep:
        return await self._arun(
            self.scheduled.plan_step_to_at(
                user_id, when, (slug, flow, state, session), if_unchanged, data
            )
        )

    def scheduled_steps(self, user_id: str) -> list[ScheduledStep]:
        return self._run(self.scheduled._scheduled_steps(user_id))

    async def ascheduled_steps(self, user_id: str) -> list[ScheduledStep]:
        return await self._arun(self.scheduled._scheduled_steps(user_id))

    def cancel_scheduled(self, user_id: str, step_id: str | None = None) -> int:
        return self._run(self.scheduled.plan_cancel_scheduled(user_id, step_id))

    async def acancel_scheduled(self, user_id: str, step_id: str | None = None) -> int:
        return await self._arun(self.scheduled.plan_cancel_scheduled(user_id, step_id))

    def scheduled_step_outcomes(self, user_id: str, limit: int = 20) -> list[StepOutcome]:
        return self._run(self.scheduled.plan_step_outcomes(user_id, limit))

    async def ascheduled_step_outcomes(self, user_id: str, limit: int = 20) -> list[StepOutcome]:
        return await self._arun(self.scheduled.plan_step_outcomes(user_id, limit))

    def run_scheduled_step(self, user_id: str, step_id: str) -> str:
        return self.scheduled.run_scheduled_step(user_id, step_id)

    def sweep_scheduled(self, grace: float, *, batch: int = 1000) -> int:
        return self.scheduled.sweep_scheduled(grace, batch=batch)

    # -- internals -----------------------------------------------------------------------

    def _session(self, user_id: str, stored: Stored) -> Session:
        slug, flow, state, _landing = self._stored_slug(stored.current)
        ttl = None
        if self._ttl_ms is not None and stored.activity_ms is not None:
            left = stored.activity_ms + self._ttl_ms - now_ms()
            ttl = max(0, -(-left // 1000))
        return Session(  # positional: twice as fast as keywords, and this is the hot path
            user_id,
            slug,
            flow,
            state,
            decode(stored.previous),
            decode(stored.back_to),
            stored.version,
            ttl,
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

    def _stored_flow(self, slug: str) -> str | None:
        """The flow of a stored slug whose state is not in the flow map (removed in a
        deploy), if the flow still is: ``state=`` alone keeps the user in it, as in Stealth."""
        try:
            flow, _state = parse(slug)
        except InvalidSlug:
            return None
        if self.flow_map is not None and flow not in self.flow_map.flows():
            return None
        return flow

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
            flow = None if current is None else current.flow or self._stored_flow(current.slug)
            if flow is None:
                raise InvalidStateTransition(
                    f"state={state!r} alone stays in the current flow, but the user has "
                    + ("no session" if current is None else f"the unusable slug {current.slug!r}")
                )
            return self._checked(slugify(flow, state))  # type: ignore[arg-type]

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
        data: dict[str, Any] | None = None,
    ) -> Plan[Session]:
        """The one write path of transitions. Raises StepNotApplied when ``step`` (a scheduled
        step firing, with its ``data``) was not applied."""
        validate_user_id(user_id)
        if not needs_current and not signals.pre_transition.has_listeners(SessionService):
            # The fast path: one round trip; the script knows the source.
            target = resolve(None)
            written = yield from self._write(
                user_id, target, update, expected_version, method, step
            )
            return (
                yield from self._after(
                    user_id, written, target, method, run_action, expected_version, data
                )
            )
        # Read first (the target or pre_transition's source needs it), then write only if the
        # version is still the one read; on a race, read again.
        for _ in range(self.conflict_retries):
            current = yield from self._peek(user_id)
            version = 0 if current is None else current.version
            if expected_version is not None and version != expected_version:
                raise SessionConflict(user_id, expected_version, version)
            target = resolve(current)
            source = None if current is None else current.slug
            if update and source == target:
                return current  # type: ignore[return-value]
            yield Send(
                signals.pre_transition,
                {
                    "user_id": user_id,
                    "source": source,
                    "target": target,
                    "method": method,
                    "run_action": run_action,
                    "data": data,
                },
            )
            written = yield from self._write(user_id, target, update, version, method, step)
            if written.status is not Status.CONFLICT:
                return (
                    yield from self._after(
                        user_id, written, target, method, run_action, version, data
                    )
                )
        raise SessionConflict(user_id, version, written.version)

    def _to_slug(
        self,
        user_id: str,
        slug: str,
        method: str,
        run_action: bool,
        update: bool,
        expected_version: int | None,
    ) -> Plan[Session]:
        """The hot path of step_to/update_session_to: a slug target and no pre_transition
        receiver make one store call, with as little Python around it as can be."""
        validate_user_id(user_id)
        target = self._checked(slug)
        if signals.pre_transition.has_listeners(SessionService):
            return (
                yield from self._transition(
                    user_id,
                    lambda current: target,
                    method=method,
                    run_action=run_action,
                    update=update,
                    expected_version=expected_version,
                    needs_current=False,
                )
            )
        written = yield from self._write(user_id, target, update, expected_version, method)
        return (
            yield from self._after(user_id, written, target, method, run_action, expected_version)
        )

    def _write(
        self,
        user_id: str,
        target: str,
        update: bool,
        expected: int | None,
        method: str,
        step: tuple[str, bool, str | None] | None = None,
    ) -> Plan[Written]:
        return self.store.plan_transition(
            user_id,
            target,
            update=update,
            expected_version=expected,
            ttl_ms=self._ttl_ms,
            method=method,
            history_length=self.history_length,
            origin=current_origin(),
            step=step,
        )

    def _after(
        self,
        user_id: str,
        written: Written,
        target: str,
        method: str,
        run_action: bool,
        expected_version: int | None,
        data: dict[str, Any] | None = None,
    ) -> Plan[Session]:
        status = written.status
        if status is Status.CONFLICT:
            raise SessionConflict(user_id, expected_version, written.version)  # type: ignore[arg-type]
        if status is Status.INTERRUPTED:
            raise interrupted(user_id, written)
        if status is Status.STEP_GONE or status is Status.STEP_DROPPED:
            raise StepNotApplied(status is Status.STEP_DROPPED, written.current)
        session = self._session(user_id, written.session)  # type: ignore[arg-type]
        if status is Status.UNCHANGED:
            return session
        metrics.transition(method)
        post = signals.post_transition.has_listeners(SessionService)
        act = run_action and signals.has_actions(target)
        if post or act:
            kwargs = {
                "user_id": user_id,
                "source": session.slug if status is Status.SLID else session.previous,
                "target": target,
                "method": method,
                "run_action": run_action,
                "session": session,
                "data": data,
            }
            if post:
                yield Send(signals.post_transition, kwargs)
            if act:
                yield Actions(kwargs)
        return session

    def _redirect(self, session: Session, target: str) -> Plan[Session]:
        try:
            return (
                yield from self._transition(
                    session.user_id,
                    lambda current: target,
                    method="redirect",
                    run_action=False,
                    update=True,
                    expected_version=session.version,
                    needs_current=False,
                )
            )
        except SessionConflict:
            # Someone else moved the user meanwhile: their write wins; show it.
            return (yield from self._get(session.user_id))  # type: ignore[return-value]
        except SessionLocked:
            # A read never fails for a lock: the owner's next transition moves the user on.
            return session


def interrupted(user_id: str, written: Written) -> SessionInterrupted:
    lock = written.lock
    holder = "another owner" if lock is None else f"{lock.holder} (since {lock.since:%H:%M:%S})"
    return SessionInterrupted(
        f"Session of user {user_id!r} is locked by {holder}: not changed. Retry after the "
        "lock is released, or make the change inside the owner's lock(user_id) block",
        lock,
    )


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
            step_locked_retries=conf.STEP_LOCKED_RETRIES,
            step_locked_retry_delay=conf.STEP_LOCKED_RETRY_DELAY,
            catch_all_ttl=conf.CATCH_ALL_TTL,
        )
    return _service


def _forget_service(*, setting: str, **kwargs: Any) -> None:
    global _service
    if setting in ("STEALTH_SESSIONS", "CACHES"):
        _service = None


setting_changed.connect(_forget_service)
