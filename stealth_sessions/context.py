"""What moved a user, recorded in each history entry (``Transition.origin``). A context
variable, so it follows the request or job that sets it, thread- and async-safe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_origin: ContextVar[str] = ContextVar("stealth_sessions_origin", default="code")


@contextmanager
def origin(name: str) -> Iterator[None]:
    """Record ``name`` as what moved the users in the history entries written inside the
    block. The HTTP API uses "api", the admin "admin", scheduled steps "scheduler"; outside
    any block it is "code"."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"origin() takes a non-empty string, not {name!r}")
    token = _origin.set(name)
    try:
        yield
    finally:
        _origin.reset(token)


def current_origin() -> str:
    return _origin.get()
