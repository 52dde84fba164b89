"""The django-health-check check: the store answers, and no scheduled step is too late."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import AsyncClient
from django.urls import include, path
from health_check.views import HealthCheckView

from stealth_sessions.contrib.health_check import SessionStore
from tests.test_scheduling import drain

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

urlpatterns = [
    path(
        "health/",
        HealthCheckView.as_view(
            checks=[
                (
                    "stealth_sessions.contrib.health_check.SessionStore",
                    {"max_step_delay": timedelta(minutes=5)},
                )
            ]
        ),
    ),
    path("", include("tests.urls")),
]


def run(coroutine):
    """asyncio.run() in a thread of its own: this thread may already run an event loop
    (Playwright's, when the browser tests ran first)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def error_of(check: SessionStore) -> str | None:
    result = run(check.get_result())
    return None if result.error is None else str(result.error)


def test_healthy_when_the_store_answers_and_nothing_is_late(service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to_in("u1", 3600, slug="follow_up->nudge")  # pending, not due
    assert error_of(SessionStore()) is None


def test_a_stopped_store_is_unavailable_without_naming_hosts(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    error = error_of(SessionStore())
    assert error == "Unavailable: The session store (Redis) does not answer"


def test_a_step_overdue_past_the_threshold_fails_until_a_worker_applies_it(service):
    with time_machine.travel(T0, tick=False):
        service.step_to_in("u1", 10, slug="follow_up->nudge")
    check = SessionStore(max_step_delay=timedelta(minutes=5))
    with time_machine.travel(T0 + timedelta(minutes=4), tick=False):
        assert error_of(check) is None  # late, within the threshold
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        error = error_of(check)
        assert error is not None and "350 s overdue" in error and "workers" in error
        assert error_of(SessionStore(max_step_delay=None)) is None  # steps not checked
    drain(T0 + timedelta(minutes=6))  # a real RQ worker runs it
    assert service.peek("u1").slug == "follow_up->nudge"
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):
        assert error_of(check) is None


def test_the_oldest_overdue_step_is_found_across_shards(service):
    with time_machine.travel(T0, tick=False):
        for i in range(50):
            service.step_to_in(f"u{i}", 10 + i, slug="follow_up->nudge")
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert service.scheduled.oldest_overdue() == T0 + timedelta(seconds=10)
        assert service.sweep_scheduled(60) == 50  # re-scored in the sweep index: still found
        assert service.scheduled.oldest_overdue() == T0 + timedelta(seconds=10)


@pytest.mark.urls("tests.test_health")
def test_the_health_view_answers_200_then_500(service):
    async def get() -> tuple[int, dict]:
        response = await AsyncClient().get("/health/", headers={"accept": "application/json"})
        return response.status_code, json.loads(response.content)

    status, body = run(get())
    assert status == 200, body
    with time_machine.travel(T0, tick=False):
        service.step_to_in("u1", 10, slug="follow_up->nudge")
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        status, body = run(get())
    assert status == 500
    assert "overdue" in json.dumps(body)
