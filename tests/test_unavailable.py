"""Rule 10: a stopped or silent Redis is SessionStoreUnavailable, in bounded time, never None."""

import os
import signal
import time

import pytest

from botproject.redis_server import RedisServer
from stealth_sessions.exceptions import SessionStoreUnavailable
from stealth_sessions.service import get_session_service


@pytest.fixture
def doomed(settings):
    """A service on a Redis server of its own, which the test may stop or freeze."""
    server = RedisServer().start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    yield server, service
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


CALLS = {
    "get": lambda s: s.get("u"),
    "peek": lambda s: s.peek("u"),
    "step_to": lambda s: s.step_to("u", slug="hello->ask_name"),
    "update_session_to": lambda s: s.update_session_to("u", slug="hello->ask_name"),
    "step_back": lambda s: s.step_back("u"),
    "set_back_to": lambda s: s.set_back_to("u", slug="hello->ask_name"),
    "reset": lambda s: s.reset("u"),
    "history": lambda s: s.history("u"),
    "count_by_state": lambda s: s.count_by_state(),
    "list_sessions": lambda s: s.list_sessions(),
    "is_locked": lambda s: s.is_locked("u"),
}


def assert_unavailable(call, service, within: float) -> None:
    start = time.monotonic()
    with pytest.raises(SessionStoreUnavailable) as info:
        call(service)
    assert time.monotonic() - start < within
    assert info.value.__cause__ is not None  # the redis error, chained


@pytest.mark.parametrize("name", CALLS)
def test_a_stopped_redis_raises_session_store_unavailable(doomed, name):
    server, service = doomed
    server.stop()
    assert_unavailable(CALLS[name], service, within=3)


def test_a_redis_that_stops_answering_raises_within_the_socket_timeout(doomed):
    server, service = doomed
    os.kill(server.process.pid, signal.SIGSTOP)
    for name in ("get", "step_to"):
        assert_unavailable(CALLS[name], service, within=3)


def test_the_lock_raises_session_store_unavailable_too(doomed):
    server, service = doomed
    server.stop()
    with pytest.raises(SessionStoreUnavailable), service.lock("u", blocking_timeout=1):
        pass
