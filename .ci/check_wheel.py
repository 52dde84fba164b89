"""Run from outside the checkout with the installed wheel: the package carries its data files,
and a project with only INSTALLED_APPS, CACHES and FLOW_MAP (no extras installed) passes
``manage.py check`` and refuses to schedule a step with a clear error."""

import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import stealth_sessions
from stealth_sessions import store

assert "site-packages" in stealth_sessions.__file__, stealth_sessions.__file__
package = files("stealth_sessions")
for name in (
    "py.typed",
    "migrations/0001_initial.py",
    "locale/fr/LC_MESSAGES/django.mo",  # compiled: no gettext needed where it is installed
    "templates/stealth_sessions/admin/change_list.html",
):
    assert package.joinpath(name).is_file(), name
scripts = {name: store.script_source(name) for name in store.SCRIPT_NAMES}
assert scripts and all("redis.call" in source for source in scripts.values())
print(f"wheel OK: {stealth_sessions.__file__}, {len(scripts)} Lua scripts")

# The README's minimal settings, in a clean virtualenv without the extras (no django-rq).
MINIMAL_SETTINGS = """
SECRET_KEY = "wheel-check"
USE_TZ = True
INSTALLED_APPS = ["stealth_sessions"]
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # never connected to by check
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
}
STEALTH_SESSIONS = {"FLOW_MAP": "mybot.flows.flow_map"}
"""
FLOWS = """
from stealth_sessions.flows import FlowMap
flow_map = FlowMap()
flow_map.flow("hello", ["say_hello", "ask_name"])
"""
STEP = """
import django
django.setup()
from django.core.exceptions import ImproperlyConfigured
from stealth_sessions.service import get_session_service
try:
    get_session_service().step_to_in("u1", 60, slug="hello->ask_name")
except ImproperlyConfigured as exc:
    print(exc)
else:
    raise SystemExit("step_to_in without an engine did not raise ImproperlyConfigured")
"""
try:
    import django_rq  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the clean virtualenv has django-rq: it must test an install without extras")
with tempfile.TemporaryDirectory() as project:
    Path(project, "mybot").mkdir()
    Path(project, "mybot", "__init__.py").write_text("")
    Path(project, "mybot", "flows.py").write_text(FLOWS)
    Path(project, "minimal_settings.py").write_text(MINIMAL_SETTINGS)
    env = {"PYTHONPATH": project, "DJANGO_SETTINGS_MODULE": "minimal_settings"}
    check = [sys.executable, "-m", "django", "check", "--fail-level", "WARNING"]
    subprocess.run(check, env=env, cwd=project, check=True)
    out = subprocess.run(
        [sys.executable, "-c", STEP], env=env, cwd=project, check=True, capture_output=True
    ).stdout.decode()
    assert "STEALTH_SESSIONS['SCHEDULER']" in out and "RQStepScheduler" in out, out
    assert "DjangoTasksScheduler" in out, out
print("minimal settings OK: manage.py check passes; step_to_in without an engine says:", out)
