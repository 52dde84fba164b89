"""Who owns a user's lock here: the owner tokens held by the running code, in a context
variable, so ownership follows a thread or an asyncio task (a task inherits its creator's
locks, as it does every context variable). Pure Python, no I/O: the store takes and releases
locks; the transition scripts compare the token given here with the one in the lock key.

Shared by the synchronous and the asynchronous service: both ask ``token(lock_key)`` before a
write and enter ``holding(lock_key, token)`` while they hold a lock.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import uuid4

_held: ContextVar[dict[str, str] | None] = ContextVar("stealth_sessions_locks", default=None)


def new_token() -> str:
    """An owner token: 32 hex digits (lua/transition.lua compares the lock value's first 32)."""
    return uuid4().hex


def token(lock_key: str) -> str | None:
    """The token of the lock ``lock_key`` held by the running code, or None."""
    held = _held.get()
    return None if held is None else held.get(lock_key)


@contextmanager
def holding(lock_key: str, owner: str) -> Iterator[None]:
    """Mark the running code as the owner of ``lock_key`` (with token ``owner``) in the block.
    The mapping is copied, never changed in place: a task or thread that copied the context
    before the block keeps what it had."""
    reset = _held.set({**(_held.get() or {}), lock_key: owner})
    try:
        yield
    finally:
        _held.reset(reset)


@contextmanager
def no_owner() -> Iterator[None]:
    """Run the block as the owner of no lock (a scheduled step firing is never the owner,
    even when an engine runs it inside the code that holds a lock)."""
    reset = _held.set(None)
    try:
        yield
    finally:
        _held.reset(reset)


def holder_name() -> str:
    """What current_lock() reports as the holder: host, process, and thread (or task)."""
    name = threading.current_thread().name
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None:
        name = f"{name}/{task.get_name()}"
    return f"{socket.gethostname()}:{os.getpid()}:{name}".replace("|", "/")
