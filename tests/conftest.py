from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import caches
from django_redis import get_redis_connection

from stealth_sessions.service import SessionService, get_session_service


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    yield
    client = get_redis_connection("default")
    if os.environ.get("STEALTH_TEST_REDIS_PRIVATE"):
        client.flushdb()  # our own server, started by tests/settings.py
    else:
        # A database named by STEALTH_TEST_REDIS_URL: only this run's keys, and RQ's (which
        # have no prefix) so that no job of this run is left for the next.
        prefix = caches["default"].key_prefix
        for pattern in (f"{prefix}:*", "rq:*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)


@pytest.fixture
def service() -> SessionService:
    return get_session_service()


@pytest.fixture
def redis_client():
    return get_redis_connection("default")


class Recorder:
    """Records what a signal sends; disconnects when the test ends."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, sender, **kwargs) -> None:
        kwargs.pop("signal", None)
        self.calls.append({"sender": sender, **kwargs})


@pytest.fixture
def receiver() -> Iterator:
    """``receiver(signal, func)`` connects ``func`` until the test ends."""
    connected = []

    def connect(signal, func):
        signal.connect(func, weak=False)
        connected.append((signal, func))
        return func

    try:
        yield connect
    finally:
        for signal, func in connected:
            signal.disconnect(func)


@pytest.fixture
def record(receiver) -> Callable:
    """``record(signal)``: a Recorder of what the signal sends, until the test ends."""
    return lambda signal: receiver(signal, Recorder())


@pytest.fixture
def action() -> Iterator:
    """``action(slug, func)``: ``@on_enter(slug)`` for this test only."""
    from stealth_sessions import signals

    registered = []

    def register(slug, func):
        signals.on_enter(slug)(func)
        registered.append(slug)
        return func

    try:
        yield register
    finally:
        for slug in registered:
            signals._actions.pop(slug, None)


@pytest.fixture
def fresh_auth_cache() -> Iterator[None]:
    """The API keeps tokens and permissions in process memory: start each test without them."""
    from stealth_sessions.api import authentication

    authentication._cache.clear()
    authentication._cache.checked = float("-inf")
    yield
    authentication._cache.clear()
