"""The HTTP API under gunicorn and wrk, against bare Django views in the same run.

All run in the same gunicorn (botproject settings, DEBUG off, a private redis-server, a
temporary SQLite database), measured in interleaved rounds on loopback:

    GET  /api/sessions/<id>/          vs  /bare/<id>/ (one redis GET)
                                      and /bare-service/<id>/ (get_with_scheduled())
    POST /api/sessions/<id>/step_to/  vs  /bare/<id>/ (one redis SET)
                                      and /bare-service/<id>/ (step_to())

The bare views answer JSON with no authentication. ``/bare/`` is the issue's baseline (the
target: the API at >= 70% of it); ``/bare-service/`` makes the API's own service call, so its
ratio is the cost of the HTTP layer alone (DRF, auth, permissions, serialization), and the
gap between the two bare views that of the session service (its Lua scripts and Python).

Prints the median requests/s of each and the ratios of medians. Before each POST run the
users are put back at the first state, so every POST of the run is a real transition (the
target alternates per user). The POSTs move between two states without bot actions (as
bench_service): the demo's ``hello->ask_name`` action schedules a step (more Redis work, and a
``scheduled`` list that grows with every pass), which is the bot's cost, not the API's.
BENCH_API_SLUGS="hello->say_hello,hello->ask_name" measures with it.
Environment: BENCH_API_ROUNDS (5), BENCH_API_SECONDS (4), BENCH_API_WORKERS (2),
BENCH_API_CONNECTIONS (4), BENCH_API_SLUGS. Needs ``wrk`` (apt-get install wrk).

gunicorn imports this module as its app (``benchmarks.bench_api:application``) and as the
URLconf: the attributes Django needs are built on first access (PEP 562), so importing it
for ``main()`` does not configure Django.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from botproject.redis_server import RedisServer, free_port

USERS = 1000
SLUGS = tuple(os.environ.get("BENCH_API_SLUGS", "order->ask_size,order->confirm").split(","))

# Run in a subprocess with the benchmark's environment: the database, the bot's user with
# both permissions and a token, and USERS sessions to read (the API's u<i>, the service view's
# svc-u<i>, the bare view's raw keys).
SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import Permission, User
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
user = User.objects.create_user("bench-bot")
user.user_permissions.add(*Permission.objects.filter(content_type__app_label="stealth_sessions"))
raw = get_redis_connection("default")
for i in range(%(users)d):
    raw.set(f"bare:u{i}", "%(slug)s")
print(Token.objects.create(user=user).key)
"""
# Put the users of the API and of the service view back at the first state.
RESET = """
import django
django.setup()
from stealth_sessions.service import get_session_service
service = get_session_service()
for i in range(%(users)d):
    service.update_session_to(f"u{i}", slug="%(slug)s")
    service.update_session_to(f"svc-u{i}", slug="%(slug)s")
"""

# wrk scripts: spread requests over the users; POSTs alternate the target so each one writes.
WRK_GET = """
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", string.format("%(prefix)s/u%%d/", i %% %(users)d), wrk.headers)
end
"""
WRK_POST = """
local i = 0
local bodies = {'{"slug": "%(a)s"}', '{"slug": "%(b)s"}'}
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local path = string.format("%(prefix)s/u%%d/%(suffix)s", i %% %(users)d)
  return wrk.format("POST", path, wrk.headers, bodies[(math.floor(i / %(users)d) %% 2) + 1])
end
"""


# -- the app gunicorn serves ----------------------------------------------------------------


def _bare_views() -> list[Any]:
    from django.http import JsonResponse
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt
    from django_redis import get_redis_connection

    from stealth_sessions.service import get_session_service

    @csrf_exempt
    def bare(request: Any, user_id: str) -> JsonResponse:
        """What the API does, minus the API and the session service: one Redis GET or SET."""
        redis = get_redis_connection("default")
        if request.method == "POST":
            slug = json.loads(request.body)["slug"]
            redis.set(f"bare:{user_id}", slug)
        else:
            raw = redis.get(f"bare:{user_id}")
            slug = raw.decode() if raw is not None else None
        return JsonResponse({"user_id": user_id, "slug": slug})

    @csrf_exempt
    def bare_service(request: Any, user_id: str) -> JsonResponse:
        """What the API does, minus the API: the same service call, a JSON answer."""
        service, user_id = get_session_service(), f"svc-{user_id}"
        steps: list[Any] = []
        if request.method == "POST":
            slug = json.loads(request.body)["slug"]
            session = service.step_to(user_id, slug=slug, scheduled_out=steps)
        else:
            session, steps = service.get_with_scheduled(user_id)
        assert session is not None
        return JsonResponse(
            {
                "user_id": user_id,
                "slug": session.slug,
                "version": session.version,
                "scheduled": [str(x.id) for x in steps],
            }
        )

    return [
        path("api/", include("stealth_sessions.api.urls")),
        path("bare/<str:user_id>/", bare),
        path("bare-service/<str:user_id>/", bare_service),
    ]


def __getattr__(name: str) -> Any:
    if name == "urlpatterns":
        return _bare_views()
    if name == "application":
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        settings.ROOT_URLCONF = __name__
        return get_wsgi_application()
    raise AttributeError(name)


# -- the run ----------------------------------------------------------------------------------


def _wrk(url: str, script: str, token: str, seconds: int, connections: int) -> tuple[float, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", f.name,
             "-H", f"Authorization: Token {token}", url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench_api needs wrk: apt-get install wrk")
    rounds = int(os.environ.get("BENCH_API_ROUNDS", "5"))
    seconds = int(os.environ.get("BENCH_API_SECONDS", "4"))
    workers = os.environ.get("BENCH_API_WORKERS", "2")
    connections = int(os.environ.get("BENCH_API_CONNECTIONS", "4"))
    redis = RedisServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "botproject.settings",
        "REDIS_URL": redis.url,
        "DEMO_DB": str(tmp / "db.sqlite3"),
        "DJANGO_DEBUG": "0",
    }
    token = _python(SETUP % {"users": USERS, "slug": SLUGS[0]}, env).split()[-1]
    reset = RESET % {"users": USERS, "slug": SLUGS[0]}
    _python(reset, env)
    port = free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", f"{__name__}:application", "-w", workers,
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    views = {"API": "/api/sessions", "bare": "/bare", "service": "/bare-service"}
    try:
        _wait_for(base)
        routes = {
            "GET sessions/{id}/": {
                name: WRK_GET % {"prefix": prefix, "users": USERS}
                for name, prefix in views.items()
            },
            "POST sessions/{id}/step_to/": {
                name: WRK_POST % {"prefix": prefix, "users": USERS, "a": SLUGS[1], "b": SLUGS[0],
                                  "suffix": "step_to/" if name == "API" else ""}
                for name, prefix in views.items()
            },
        }  # fmt: skip
        print(
            f"gunicorn -w {workers} (sync), wrk -t1 -c{connections}, {rounds} rounds x "
            f"{seconds}s, {os.cpu_count()} CPUs, token auth (cached), loopback. bare: one "
            "Redis GET/SET; service: the API's service call, no DRF",
            flush=True,
        )
        for label, scripts in routes.items():
            post = label.startswith("POST")
            rates: dict[str, list[float]] = {name: [] for name in scripts}
            errors = 0
            for warm_up in (True,) + (False,) * rounds:  # the first: imports, caches, scripts
                for name, script in scripts.items():
                    if post and name != "bare":
                        _python(reset, env)  # every POST of the run is a real transition
                    rps, bad = _wrk(base, script, token, 1 if warm_up else seconds, connections)
                    if not warm_up:
                        rates[name].append(rps)
                        errors += bad
            m = {name: statistics.median(r) for name, r in rates.items()}
            ratios = sorted(x / y for x, y in zip(rates["API"], rates["bare"]))
            print(
                f"{label:<28} API {m['API']:>6,.0f} req/s | bare {m['bare']:>6,.0f}: "
                f"{m['API'] / m['bare']:4.0%} (rounds {ratios[0]:.0%}..{ratios[-1]:.0%}) | "
                f"service {m['service']:>6,.0f}: {m['API'] / m['service']:4.0%} | "
                f"service/bare {m['service'] / m['bare']:4.0%}"
                + (f"  NON-2xx: {errors}" if errors else ""),
                flush=True,
            )
    finally:
        gunicorn.terminate()
        gunicorn.wait(10)
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _python(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a Python subprocess with the benchmark's environment; its stdout."""
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout


def _wait_for(base: str) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/api/flows/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # 401: up
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
