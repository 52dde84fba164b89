"""SessionService: the only write path. Validates, writes through the store, sends signals."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from . import signals
from .conf import conf
from .exceptions import (
    InvalidSlug,
    InvalidStateTransition,
    InvalidUserId,
    NoBackToSession,
    SessionConflict,
)
from .flows import FlowMap
from .slugs import parse, slugify
from .store import CONFLICT, NO_SESSION, SLID, UNCHANGED, RedisStore, Row, decode, from_cache
from .values import Session, Transition

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
    ) -> None:
        self.store = store
        self.flow_map = flow_map
        self.ttl = ttl
        self._ttl_ms = ttl * 1000 if ttl else None
        self.history_length = history_length
        self.lock_timeout = lock_timeout
        self.conflict_retries = conflict_retries

    # -- reading -------------------------------------------------------------------------

    def get(self, user_id: str) -> Session | None:
        """The user's session, or None; slides the expiry of all the user's keys together.
        A session left on a state that now redirects (renamed in a deploy) is moved on."""
        row = self.store.read(validate_user_id(user_id), self._ttl_ms, True)
        if row is None:
            return None
        session = self._session(user_id, row)
        fm = self.flow_map
        if fm is not None and session.state and session.slug != fm.resolve(session.slug):
            return self._redirect(session)
        return session

    def peek(self, user_id: str) -> Session | None:
        """The user's session, or None, without touching expiry or indexes (for admin screens)."""
        row = self.store.read(validate_user_id(user_id), None, False)
        return None if row is None else self._session(user_id, row)

    def history(self, user_id: str, limit: int = 50) -> list[Transition]:
        """The latest transitions, newest first (at most HISTORY_LENGTH are kept)."""
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
    ) -> Session:
        """Move the user and run the target state's action (``run_action=True``)."""
        return self._transition(
            user_id,
            self._target_resolver(slug, flow, state, session),
            method="step_to",
            run_action=True,
            update=False,
            expected_version=expected_version,
            needs_current=state is not None and flow is None,
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
        return self._transition(
            user_id,
            self._target_resolver(slug, flow, state, session),
            method="update_session_to",
            run_action=False,
            update=True,
            expected_version=expected_version,
            needs_current=state is not None and flow is None,
        )

    def step_back(self, user_id: str, *, expected_version: int | None = None) -> Session:
        """Step to the stored back-to session (which stays in place)."""

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
            user_id, target, expected_version=expected_version, ttl_ms=self._ttl_ms
        )
        if row[0] == NO_SESSION:
            raise InvalidStateTransition(f"User {user_id!r} has no session to set a back-to on")
        if row[0] == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        return self._session(user_id, row)

    def reset(self, user_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the user's session, previous, back-to and history. True if there was one."""
        row = self.store.reset(validate_user_id(user_id), expected_version=expected_version)
        if row[0] == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        if row[0] == UNCHANGED:
            return False
        signals.session_reset.send(
            sender=SessionService, user_id=user_id, session=self._session(user_id, row)
        )
        return True

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
        slug = cur.decode("utf-8", "replace")
        flow = state = None
        try:
            flow, state = parse(slug)
        except InvalidSlug:
            pass
        else:
            if self.flow_map is not None and slug not in self.flow_map:
                flow = state = None
        return Session(
            user_id=user_id,
            slug=slug,
            flow=flow,
            state=state,
            previous=decode(prev),
            back_to=decode(back),
            version=version,
            ttl=None if pttl < 0 else -(-pttl // 1000),
        )

    def _checked(self, slug: str) -> str:
        """Validate ``slug`` against the flow map and follow its redirects."""
        flow, state = parse(slug)
        if self.flow_map is None:
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
    ) -> Session:
        validate_user_id(user_id)
        if not needs_current and not signals.pre_transition.has_listeners(SessionService):
            # The fast path: one round trip; the script knows the source.
            target = resolve(None)
            row = self._write(user_id, target, update, expected_version, method)
            return self._after(user_id, row, target, method, run_action, expected_version)
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
                return current  # type: ignore[return-value]
            signals.pre_transition.send(
                sender=SessionService,
                user_id=user_id,
                source=source,
                target=target,
                method=method,
                run_action=run_action,
            )
            row = self._write(user_id, target, update, version, method)
            if row[0] != CONFLICT:
                return self._after(user_id, row, target, method, run_action, version)
        raise SessionConflict(user_id, version, row[1])

    def _write(
        self, user_id: str, target: str, update: bool, expected: int | None, method: str
    ) -> Row:
        return self.store.transition(
            user_id,
            target,
            update=update,
            expected_version=expected,
            ttl_ms=self._ttl_ms,
            method=method,
            history_length=self.history_length,
        )

    def _after(
        self,
        user_id: str,
        row: Row,
        target: str,
        method: str,
        run_action: bool,
        expected_version: int | None,
    ) -> Session:
        status = row[0]
        if status == CONFLICT:
            raise SessionConflict(user_id, expected_version, row[1])  # type: ignore[arg-type]
        session = self._session(user_id, row)
        if status == UNCHANGED:
            return session
        source = session.slug if status == SLID else session.previous
        signals.post_transition.send(
            sender=SessionService,
            user_id=user_id,
            source=source,
            target=target,
            method=method,
            run_action=run_action,
            session=session,
        )
        return session

    def _redirect(self, session: Session) -> Session:
        target = self.flow_map.resolve(session.slug)  # type: ignore[union-attr]
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
        )
    return _service


def _forget_service(*, setting: str, **kwargs: Any) -> None:
    global _service
    if setting in ("STEALTH_SESSIONS", "CACHES"):
        _service = None


setting_changed.connect(_forget_service)
