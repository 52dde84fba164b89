"""What moved a user, recorded in each history entry (``Transition.origin``). A context
variable, so it follows the request or job that sets it, thread- and async-safe."""

from __future__ import annotations

from contextvars import ContextVar

_origin: ContextVar[str] = ContextVar("stealth_sessions_origin", default="code")


class origin:  # lower case: used like a function, ``with origin("admin"):``
    """Record ``name`` as what moved the users in the history entries written inside the
    block. The HTTP API uses "api", the admin "admin", scheduled steps "scheduler"; outside
    any block it is "code".

    A class rather than a ``@contextmanager`` generator: the HTTP API enters one per request,
    and this costs a third as much."""

    __slots__ = ("name", "token")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"origin() takes a non-empty string, not {name!r}")
        self.name = name

    def __enter__(self) -> None:
        self.token = _origin.set(self.name)

    def __exit__(self, *exc_info: object) -> None:
        _origin.reset(self.token)


def current_origin() -> str:
    return _origin.get()
