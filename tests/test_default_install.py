"""A default that installs cleanly: no scheduling engine unless one is configured, and a
clear error, never a stored step that no engine runs, when the engine cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from stealth_sessions.conf import DEFAULTS
from stealth_sessions.service import get_session_service

RQ_ENGINE = "stealth_sessions.scheduling.rq_engine.RQStepScheduler"
TASKS_ENGINE = "stealth_sessions.scheduling.tasks.DjangoTasksScheduler"
ROOT = Path(__file__).resolve().parent.parent


def _ids():
    return [m.id for m in run_checks() if m.id.startswith("stealth_sessions.")]


@pytest.fixture
def no_engine(settings):
    settings.STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map"}


@pytest.fixture
def without_django_rq(monkeypatch):
    """As if django-rq were not installed: importing it raises ImportError."""
    monkeypatch.setitem(sys.modules, "django_rq", None)


def test_the_default_is_no_engine():
    assert DEFAULTS["SCHEDULER"] is None


def test_without_an_engine_the_checks_pass(no_engine):
    assert _ids() == []


def test_without_an_engine_scheduling_raises_naming_the_setting_and_the_engines(no_engine):
    service = get_session_service()
    service.step_to("u1", slug="hello->say_hello")
    for schedule in (
        lambda: service.step_to_in("u1", 60, slug="hello->ask_name"),
        lambda: service.step_to_at("u1", _later(), slug="hello->ask_name"),
    ):
        with pytest.raises(ImproperlyConfigured) as raised:
            schedule()
        message = str(raised.value)
        assert "STEALTH_SESSIONS['SCHEDULER']" in message
        assert RQ_ENGINE in message and TASKS_ENGINE in message
    assert service.scheduled_steps("u1") == []
    assert service.get("u1").slug == "hello->say_hello"


def _later():
    return timezone.now() + timedelta(minutes=1)


def test_an_engine_whose_package_is_missing_is_a_check_error(settings, without_django_rq):
    settings.STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map", "SCHEDULER": RQ_ENGINE}
    [error] = [m for m in run_checks() if m.id.startswith("stealth_sessions.")]
    assert error.id == "stealth_sessions.E011"
    assert "django_rq is not installed" in error.msg and "stealth-sessions[rq]" in error.msg


def test_an_engine_whose_package_is_missing_refuses_to_store_a_step(settings, without_django_rq):
    settings.STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map", "SCHEDULER": RQ_ENGINE}
    service = get_session_service()
    with pytest.raises(ImproperlyConfigured) as raised:
        service.step_to_in("u1", 60, slug="hello->ask_name")
    assert "django_rq is not installed" in str(raised.value)
    assert "stealth-sessions[rq]" in str(raised.value)
    assert service.scheduled_steps("u1") == []


MINIMAL = """
SECRET_KEY = "x"
USE_TZ = True
INSTALLED_APPS = ["stealth_sessions"]
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
}
STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map"}
"""


def test_manage_py_check_passes_with_only_installed_apps_caches_and_flow_map(tmp_path):
    """The README's minimal settings, in a real ``manage.py check`` run (make wheel-check runs
    it again from the installed wheel in a clean virtualenv, without any extra)."""
    (tmp_path / "minimal_settings.py").write_text(MINIMAL)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "minimal_settings",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
