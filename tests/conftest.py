from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache

import pytest
import redis
from django.core.cache import caches
from django_redis import get_redis_connection
from redis.cluster import RedisCluster

from stealth_sessions import cluster
from stealth_sessions.service import SessionService, get_session_service


@cache
def rq_redis() -> redis.Redis:
    """RQ's own Redis in a cluster run (tests/redis_plugin.py); RQ needs a single Redis."""
    return redis.Redis.from_url(os.environ["STEALTH_TEST_RQ_URL"])


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[None]:
    yield
    client = cluster.redis_client("default")
    private = os.environ.get("STEALTH_TEST_REDIS_PRIVATE") == "1"
    if isinstance(client, RedisCluster):
        if private:  # our own servers, started by tests/redis_plugin.py
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
            rq_redis().flushdb()
        else:
            delete_matching(client, f"{caches['default'].key_prefix}:*")
            delete_matching(rq_redis(), "rq:*")
    elif private:
        client.flushdb()
    else:
        # A database named by STEALTH_TEST_REDIS_URL: only this run's keys, and RQ's (which
        # have no prefix) so that no job of this run is left for the next.
        delete_matching(client, f"{caches['default'].key_prefix}:*")
        delete_matching(client, "rq:*")


def delete_matching(client: redis.Redis | RedisCluster, pattern: str) -> None:
    if isinstance(client, RedisCluster):
        keys = client.scan_iter(match=pattern, count=1000, target_nodes=RedisCluster.PRIMARIES)
    else:
        keys = client.scan_iter(match=pattern, count=1000)
    for key in list(keys):
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
