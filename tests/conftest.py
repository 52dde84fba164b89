from __future__ import annotations

import os
from collections.abc import Iterator

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
def record() -> Iterator:
    connected = []

    def connect(signal) -> Recorder:
        recorder = Recorder()
        signal.connect(recorder, weak=False)
        connected.append((signal, recorder))
        return recorder

    try:
        yield connect
    finally:
        for signal, recorder in connected:
            signal.disconnect(recorder)


@pytest.fixture
def fresh_auth_cache() -> Iterator[None]:
    """The API keeps tokens and permissions in process memory: start each test without them."""
    from stealth_sessions.api import authentication

    authentication._cache.clear()
    authentication._cache.checked = float("-inf")
    yield
    authentication._cache.clear()
