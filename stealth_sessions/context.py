"""What moved a user, recorded in each history entry (``Transition.origin``). A context
variable, so it follows the request or job that sets it, thread- and async-safe."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_origin: ContextVar[str] = ContextVar("stealth_sessions_origin", default="code")


class origin:  # lower case: used like a function, ``with origin("admin"):``
    """Record ``name`` as what moved the users in the history entries written inside the
    block (``with origin("admin"):``) or the decorated function (``@origin("admin")``). The
    HTTP API uses "api", the admin "admin", scheduled steps "scheduler"; outside any block it
    is "code".

    A class rather than a ``@contextmanager`` generator: the HTTP API enters one per request,
    and this costs a third as much."""

    __slots__ = ("name", "_tokens")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"origin() takes a non-empty string, not {name!r}")
        self.name = name
        self._tokens: list[Token[str]] = []

    def __enter__(self) -> None:
        self._tokens.append(_origin.set(self.name))

    def __exit__(self, *exc_info: object) -> None:
        _origin.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        @wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with origin(self.name):
                return func(*args, **kwargs)

        return inner  # type: ignore[return-value]


def current_origin() -> str:
    return _origin.get()
