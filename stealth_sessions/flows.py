"""The flow map: which flows exist, their ordered states, and where states fail or redirect to.

Example::

    fm = FlowMap()
    fm.flow("hello", [
        "say_hello",
        State("ask_name", fails_to="say_hello"),
        State("old_name", redirects_to="goodbye->say_bye"),
    ])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from .exceptions import InvalidSlug, InvalidStateTransition
from .slugs import SEPARATOR, is_identifier, parse, slugify


class State:
    """A state of a flow; ``fails_to``/``redirects_to`` become full slugs once declared.

    As in Stealth, ``str(state)`` is its name, and the states of a flow compare by their
    position in it (``<``, ``>``, ``sorted()``); comparing states of two flows, or a state not
    declared yet, is a TypeError."""

    __slots__ = ("name", "flow", "fails_to", "redirects_to", "opts", "position")

    def __init__(
        self,
        name: str,
        *,
        fails_to: str | None = None,
        redirects_to: str | None = None,
        **opts: Any,
    ) -> None:
        if not is_identifier(name):
            raise InvalidSlug(f"State name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        self.name = name
        self.flow: str | None = None
        self.fails_to = fails_to
        self.redirects_to = redirects_to
        self.opts: dict[str, Any] = opts
        #: Its index in its flow, once declared.
        self.position: int | None = None

    def __str__(self) -> str:
        return self.name

    def _order(self, other: object) -> tuple[int, int] | None:
        if not isinstance(other, State):
            return None
        if self.flow is None or other.flow is None or self.flow != other.flow:
            raise TypeError(
                f"Only states of one flow compare by position, not {self!r} and {other!r}"
            )
        return self.position, other.position  # type: ignore[return-value]

    def __lt__(self, other: object) -> bool:
        pair = self._order(other)
        return NotImplemented if pair is None else pair[0] < pair[1]

    def __le__(self, other: object) -> bool:
        pair = self._order(other)
        return NotImplemented if pair is None else pair[0] <= pair[1]

    def __gt__(self, other: object) -> bool:
        pair = self._order(other)
        return NotImplemented if pair is None else pair[0] > pair[1]

    def __ge__(self, other: object) -> bool:
        pair = self._order(other)
        return NotImplemented if pair is None else pair[0] >= pair[1]

    @property
    def slug(self) -> str:
        if self.flow is None:
            raise InvalidStateTransition(f"State {self.name!r} is not declared in a flow yet")
        return slugify(self.flow, self.name)

    def __repr__(self) -> str:
        where = self.slug if self.flow else self.name
        extra = "".join(
            f", {k}={v!r}"
            for k, v in (("fails_to", self.fails_to), ("redirects_to", self.redirects_to))
            if v
        )
        return f"State({where!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.name, self.flow, self.fails_to, self.redirects_to, self.opts) == (
            other.name,
            other.flow,
            other.fails_to,
            other.redirects_to,
            other.opts,
        )

    __hash__ = None  # type: ignore[assignment]


def _full_slug(flow: str, ref: str, what: str, state: str) -> str:
    """A reference is a state of the same flow or a full ``flow->state`` slug."""
    if not isinstance(ref, str):
        raise InvalidSlug(f"{what} of {flow}->{state} must be a string, not {ref!r}")
    if SEPARATOR in ref:
        parse(ref)
        return ref
    if not is_identifier(ref):
        raise InvalidSlug(
            f"{what}={ref!r} of {flow}->{state} is neither a state name nor a 'flow->state' slug"
        )
    return slugify(flow, ref)


class FlowMap:
    """Flows and their ordered states, declared once at import time of the bot project."""

    def __init__(self) -> None:
        self._flows: dict[str, dict[str, State]] = {}
        # Declared slug -> where a step into it lands; built on first use (hot path of get).
        self._landing: dict[str, str] | None = None
        #: Grows with every declaration, so that caches built on the map know to start over.
        self.generation = 0

    def flow(self, name: str, states: Sequence[str | State]) -> tuple[State, ...]:
        """Declare flow ``name`` with its states in order; the first is the initial state."""
        if not is_identifier(name):
            raise InvalidSlug(f"Flow name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        if name in self._flows:
            raise ValueError(f"Flow {name!r} is declared twice")
        if isinstance(states, (str, State)) or not states:
            raise ValueError(f"Flow {name!r} needs a non-empty list of states")
        declared: dict[str, State] = {}
        for item in states:
            src = item if isinstance(item, State) else State(item)
            if src.name in declared:
                raise ValueError(f"State {src.name!r} is declared twice in flow {name!r}")
            state = State(src.name, **src.opts)
            state.flow = name
            state.position = len(declared)
            if src.fails_to:
                state.fails_to = _full_slug(name, src.fails_to, "fails_to", src.name)
            if src.redirects_to:
                state.redirects_to = _full_slug(name, src.redirects_to, "redirects_to", src.name)
            declared[state.name] = state
        self._flows[name] = declared
        self._landing = None
        self.generation += 1
        try:
            for state in declared.values():
                if state.redirects_to:
                    self._follow_redirects(state.slug, strict=False)
        except InvalidStateTransition:
            del self._flows[name]
            raise
        return tuple(declared.values())

    # -- introspection -------------------------------------------------------------------

    def flows(self) -> list[str]:
        return list(self._flows)

    def states(self, flow: str) -> list[str]:
        return list(self._states_of(flow))

    def initial_state(self, flow: str) -> str:
        return next(iter(self._states_of(flow)))

    def state(self, flow: str, name: str) -> State:
        states = self._states_of(flow)
        try:
            return states[name]
        except (KeyError, TypeError):
            raise InvalidStateTransition(
                f"Unknown state {name!r} for flow {flow!r}; declared: {', '.join(states)}"
            ) from None

    def validate(self, flow: str, state: str) -> None:
        """Raise InvalidStateTransition unless ``flow->state`` is declared."""
        self.state(flow, state)

    def __contains__(self, slug: object) -> bool:
        try:
            flow, state = parse(slug)
        except InvalidSlug:
            return False
        return state in self._flows.get(flow, ())

    def offset(self, slug: str, n: int) -> str:
        """Stealth's ``session + n.states``: n states along the flow, clamped at both ends."""
        flow, state = parse(slug)
        names = self.states(flow)
        self.validate(flow, state)
        index = min(max(names.index(state) + n, 0), len(names) - 1)
        return slugify(flow, names[index])

    def retry_target(self, slug: str) -> str:
        """Where a catch-all sends a user who failed at ``slug`` (Stealth's default
        catch-all): the state's ``fails_to``, else the state two before it in its flow
        (clamped at the first state). InvalidStateTransition if ``slug`` is not declared."""
        flow, name = parse(slug)
        state = self.state(flow, name)
        return state.fails_to or self.offset(slug, -2)

    def landing(self, slug: str) -> str | None:
        """Where a step into ``slug`` lands (itself, or the end of its redirects); None if
        ``slug`` is not declared or its redirects lead nowhere. A dict lookup: hot path."""
        if self._landing is None:
            landing = {}
            for state in self:
                with contextlib.suppress(InvalidStateTransition):
                    landing[state.slug] = self._follow_redirects(state.slug, strict=True)
            self._landing = landing
        return self._landing.get(slug)

    def resolve(self, slug: str) -> str:
        """The slug a step into ``slug`` lands on: ``slug`` itself, or the end of its redirects."""
        landing = self.landing(slug) if isinstance(slug, str) else None
        if landing is not None:
            return landing
        flow, state = parse(slug)
        self.validate(flow, state)
        return self._follow_redirects(slug, strict=True)

    def problems(self) -> list[str]:
        """References to undeclared states (flows may be declared in any order, so checked late)."""
        found = []
        for flow, states in self._flows.items():
            for state in states.values():
                for what in ("fails_to", "redirects_to"):
                    ref = getattr(state, what)
                    if ref and ref not in self:
                        found.append(f"{flow}->{state.name} {what} {ref!r}, which is not declared")
        return found

    # -- internals -----------------------------------------------------------------------

    def _states_of(self, flow: str) -> dict[str, State]:
        try:
            return self._flows[flow]
        except (KeyError, TypeError):
            raise InvalidStateTransition(
                f"Unknown flow {flow!r}; declared: {', '.join(self._flows) or '(none)'}"
            ) from None

    def _follow_redirects(self, slug: str, *, strict: bool) -> str:
        seen = [slug]
        while True:
            flow, name = parse(slug)
            states = self._flows.get(flow)
            if states is None or name not in states:
                if strict:
                    raise InvalidStateTransition(
                        f"{seen[-2]} redirects to {slug}, which is not declared"
                    )
                return slug
            target = states[name].redirects_to
            if not target:
                return slug
            if target in seen:
                raise InvalidStateTransition(
                    "Redirect loop: " + " -> ".join(f"[{s}]" for s in [*seen, target])
                )
            seen.append(target)
            slug = target

    def __iter__(self) -> Iterator[State]:
        for states in self._flows.values():
            yield from states.values()
