"""Prometheus metrics: transitions, scheduled steps (in a real RQ worker), store errors and
users per flow, on real Redis."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from stealth_sessions import metrics
from stealth_sessions.context import origin


@pytest.fixture
def on(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "METRICS": True}
    yield
    # settings' teardown turns them off again (setting_changed)


def value(name: str, registry=REGISTRY, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_transitions_are_counted_by_method_and_origin(service, on):
    before = value("stealth_sessions_transitions_total", method="step_to", origin="admin")
    service.step_to("u1", slug="hello->say_hello")
    with origin("admin"):
        service.step_to("u1", slug="hello->ask_name")
        service.update_session_to("u1", slug="hello->say_hello")
    after = value("stealth_sessions_transitions_total", method="step_to", origin="admin")
    assert after - before == 1
    assert value("stealth_sessions_transitions_total", method="update_session_to", origin="admin")


def test_nothing_is_counted_when_metrics_are_off(service, on, settings):
    settings.STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map"}
    before = value("stealth_sessions_transitions_total", method="step_to", origin="code")
    service.step_to("u1", slug="hello->say_hello")
    assert value("stealth_sessions_transitions_total", method="step_to", origin="code") == before
    assert b"stealth_sessions_users{" not in generate_latest(REGISTRY)


def test_users_per_flow_and_state_are_counted_on_scrape(service, on, redis_client):
    for user in ("a", "b"):
        service.step_to(user, slug="hello->ask_name")
    service.step_to("c", slug="goodbye->say_bye")
    text = generate_latest(REGISTRY).decode()
    assert 'stealth_sessions_users{flow="hello",state="ask_name"} 2.0' in text
    assert 'stealth_sessions_users{flow="goodbye",state="say_bye"} 1.0' in text
    service.reset("c")
    assert 'state="say_bye"' not in generate_latest(REGISTRY).decode()


def test_scheduled_steps_in_a_real_worker_count_outcomes_and_lag(service, tmp_path):
    """The worker counts in its own process: here in prometheus_client's multiprocess mode,
    read from its files as a web process's exporter would."""
    from django.utils import timezone

    due = timezone.now() - timedelta(seconds=30)
    for i in range(3):
        service.step_to_at(f"u{i}", due, slug="follow_up->nudge")
    service.step_to("u3", slug="hello->ask_name")
    service.step_to_at("u3", due, slug="follow_up->nudge", if_unchanged=True)
    service.step_to("u3", slug="hello->get_name")
    command = [sys.executable, "-m", "django", "rqworker", "default", "--burst",
               "--worker-class", "rq.worker.SimpleWorker"]  # fmt: skip
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.metrics_settings",
        "PYTHONPATH": os.getcwd(),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    done = subprocess.run(command, env=env, timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert service.peek("u0").slug == "follow_up->nudge", done.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert value("stealth_sessions_scheduled_steps_total", registry, outcome="applied") == 3
    assert value("stealth_sessions_scheduled_steps_total", registry, outcome="dropped") == 1
    assert value("stealth_sessions_scheduled_step_lag_seconds_count", registry) == 3
    assert value("stealth_sessions_scheduled_step_lag_seconds_sum", registry) >= 90
    assert value("stealth_sessions_scheduled_step_lag_seconds_bucket", registry, le="10.0") == 0


# Only here: django-rq enqueues on commit, which never comes in a test's transaction.
@pytest.mark.django_db
def test_a_503_is_logged_once_with_its_cause_and_counted(on, settings, caplog):
    from django.contrib.auth.models import User

    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    api = Client()
    api.force_login(User.objects.create_superuser("bot", "b@example.com", "pw"))
    before = {w: value("stealth_sessions_store_errors_total", where=w) for w in ("admin", "api")}
    with caplog.at_level(logging.ERROR, logger="stealth_sessions"):
        assert admin.get("/admin/stealth_sessions/session/").status_code == 503
        assert api.get("/api/sessions/u1/").status_code == 503
    ours = [
        r for r in caplog.records if r.name in ("stealth_sessions.admin", "stealth_sessions.api")
    ]
    assert [r.name for r in ours] == ["stealth_sessions.admin", "stealth_sessions.api"]
    for record in ours:
        assert "with a 503" in record.getMessage() and "Connection refused" in str(
            record.exc_info[1].__cause__
        )
    for where in ("admin", "api"):
        assert value("stealth_sessions_store_errors_total", where=where) == before[where] + 1


def test_a_scrape_with_the_store_down_still_answers(on, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    before = value("stealth_sessions_store_errors_total", where="metrics")
    text = generate_latest(REGISTRY).decode()
    assert "stealth_sessions_transitions_total" in text
    assert value("stealth_sessions_store_errors_total", where="metrics") == before + 1


def test_metrics_without_prometheus_client_is_a_system_check_error(settings, monkeypatch):
    from django.core.checks import run_checks

    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "METRICS": True}
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert [m.id for m in run_checks() if m.id.startswith("stealth_sessions.")] == [
        "stealth_sessions.E012"
    ]


def test_metrics_must_be_a_bool(settings):
    from django.core.checks import run_checks

    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "METRICS": "yes"}
    assert [m.id for m in run_checks() if m.id.startswith("stealth_sessions.")] == [
        "stealth_sessions.E005"
    ]
    assert metrics._active is None
