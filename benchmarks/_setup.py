"""Shared by the benchmarks: a private redis-server and Django configured against it, the
demo's flow map, the loader of a million sessions, and the timing helpers."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import django
from django.conf import settings

from botproject.redis_server import RedisServer
from stealth_sessions.flows import FlowMap, State

if TYPE_CHECKING:
    from stealth_sessions.service import SessionService

# The demo's flows, without its bot actions (they would schedule steps). Named in the
# settings as FLOW_MAP.
flow_map = FlowMap()
flow_map.flow(
    "hello", ["say_hello", "ask_name", "get_name", State("say_hola", redirects_to="say_hello")]
)
flow_map.flow("order", ["ask_size", "ask_topping", "confirm"])
flow_map.flow("follow_up", ["nudge", "give_up"])
flow_map.flow("goodbye", ["say_bye"])
FLOW_MAP = f"{__name__}.flow_map"

# load_sessions() spreads the users over these, in turn: a sixth of them at each slug, a
# third in the flow "order".
LOAD_SLUGS = (
    "hello->say_hello",
    "hello->ask_name",
    "hello->get_name",
    "order->ask_size",
    "order->confirm",
    "goodbye->say_bye",
)

# What start_django(urlconf=...) adds: the admin and what it needs, and RQ for scheduled steps.
WEB_APPS = [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
]
WEB_SETTINGS: dict[str, object] = {
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    "SECRET_KEY": "benchmarks-only",
    "ALLOWED_HOSTS": ["testserver"],  # the test Client's host
    "STATIC_URL": "/static/",
    "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
}


def start_django(urlconf: str | None = None, **stealth: object) -> RedisServer:
    """Start a private redis-server and configure Django on it (once per process), with
    ``STEALTH_SESSIONS=stealth`` and an in-memory SQLite database. ``urlconf``: also the
    admin, sessions, messages, templates and django-rq (the scheduler's engine), serving
    that URLconf with DEBUG off, as in production."""
    server = RedisServer().start()
    os.environ["REDIS_URL"] = server.url
    apps = ["django.contrib.contenttypes", "django.contrib.auth", "stealth_sessions"]
    web: dict[str, object] = {}
    if urlconf is not None:
        apps += WEB_APPS
        web = {
            **WEB_SETTINGS,
            "ROOT_URLCONF": urlconf,
            "RQ_QUEUES": {"default": {"URL": server.url}},
        }
    settings.configure(
        USE_TZ=True,
        INSTALLED_APPS=apps,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 5},
            }
        },
        STEALTH_SESSIONS=stealth,
        **web,
    )
    django.setup()
    return server


def load_sessions(
    service: SessionService,
    count: int,
    slugs: Sequence[str] = LOAD_SLUGS,
    user_id: Callable[[int], str] = "user-{:08d}".format,
) -> None:
    """``count`` sessions, user ``user_id(i)`` at ``slugs[i % len(slugs)]``: the store's own
    transition script (one step_to each), queued on a pipeline of 5,000 at a time, so the
    layout and indexes are exactly the service's and a million load in about a minute."""
    from stealth_sessions.store import RedisStore

    store = service.store
    pipe = store.client.pipeline(transaction=False)
    store.client.script_load(store._transition.source)  # the pipeline runs EVALSHA only
    loader = RedisStore(pipe, store.keys)
    for i in range(count):
        loader.transition(
            user_id(i),
            slugs[i % len(slugs)],
            update=False,
            expected_version=None,
            ttl_ms=None,
            method="step_to",
            history_length=service.history_length,
        )
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def rate(func: Callable[[int], None], n: int) -> float:
    """Operations per second of ``func(i)`` for i in range(n)."""
    start = time.perf_counter()
    for i in range(n):
        func(i)
    return n / (time.perf_counter() - start)


def compare(
    label: str, ours: Callable[[int], None], base: Callable[[int], None], n: int, rounds: int = 21
) -> float:
    """Short interleaved rounds of the baseline and ours, so that a noisy neighbour slows both
    alike; prints the median rates and the median of the per-round ratios."""
    ours_rates, base_rates = [], []
    for _ in range(rounds):
        base_rates.append(rate(base, n))
        ours_rates.append(rate(ours, n))
    o, b = statistics.median(ours_rates), statistics.median(base_rates)
    ratios = sorted(x / y for x, y in zip(ours_rates, base_rates))
    ratio = statistics.median(ratios)
    print(
        f"{label:<40} {o:>8,.0f}/s vs {b:>8,.0f}/s  ratio {ratio:4.0%} "
        f"(quartiles {ratios[len(ratios) // 4]:.0%}..{ratios[3 * len(ratios) // 4]:.0%})",
        flush=True,
    )
    return ratio


def elapsed_ms(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return (time.perf_counter() - start) * 1000


def timed_ms(func: Callable[[], object], repeat: int = 21) -> float:
    """The median time of ``func()`` in milliseconds."""
    return statistics.median(elapsed_ms(func) for _ in range(repeat))
