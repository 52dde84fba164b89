"""Shared by the benchmarks: a private redis-server and Django configured against it, the
demo's flow map, the loader of a million sessions, and the timing helpers."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import django
from django.conf import settings
from redis import cluster

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


def start_django(
    urlconf: str | None = None,
    caches: dict[str, object] | None = None,
    redis_args: Sequence[str] = (),
    **stealth: object,
) -> RedisServer:
    """Start a private redis-server and configure Django on it (once per process), with
    ``STEALTH_SESSIONS=stealth`` and an in-memory SQLite database. ``urlconf``: also the
    admin, sessions, messages, templates and django-rq (the scheduler's engine), serving
    that URLconf with DEBUG off, as in production. ``caches``: more cache aliases, beside
    ``default`` (the private server); ``redis_args``: more redis-server arguments."""
    server = RedisServer(extra_args=redis_args).start()
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
            },
            **(caches or {}),
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
    *,
    rounds: range = range(1),
    ttl_ms: int | None = None,
    history_length: int | None = None,
) -> None:
    """``count`` sessions: in round ``r`` of ``rounds``, user ``user_id(i)`` steps to
    ``slugs[(i + r) % len(slugs)]`` (round 0 alone: a sixth of the users at each of
    LOAD_SLUGS). Each step is the store's own transition script (a step_to), so the layout,
    the indexes and the history are exactly the service's; ``ttl_ms``: the expiry the keys
    get (None: none); ``history_length``: the service's unless given.

    The calls are queued on a non-transactional pipeline (a cluster's sends each node its
    share) and sent 5,000 at a time: about 12,000 a second on this project's 2-core machine,
    half of it the script on the server, half redis-py building and parsing in Python (a
    thread sending one batch while the next is built gained nothing: both halves of the
    Python work need the GIL)."""
    store = service.store
    script = store.scripts.transition
    hlen = service.history_length if history_length is None else history_length
    client = store.client
    client.script_load(script.script)  # the pipeline runs EVALSHA only
    pipe = client.pipeline(transaction=False)
    on_cluster = isinstance(client, cluster.RedisCluster)
    for r in rounds:
        for i in range(count):
            keys, args = store.transition_call(
                user_id(i), slugs[(i + r) % len(slugs)], False, None, ttl_ms, "step_to", hlen
            )
            # Not pipe.evalsha(): redis-py's cluster pipeline refuses it by that name. On a
            # cluster, the node is named: else redis-py asks a node for the keys of each
            # EVALSHA (COMMAND GETKEYS, a round trip per call).
            options = {"target_nodes": client.get_node_from_key(keys[0])} if on_cluster else {}
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args, **options)
            if len(pipe) == 5000:
                pipe.execute()
    pipe.execute()


def rate(func: Callable[[int], None], n: int) -> float:
    """Operations per second of ``func(i)`` for i in range(n)."""
    start = time.perf_counter()
    for i in range(n):
        func(i)
    return n / (time.perf_counter() - start)


@dataclass(frozen=True)
class Compared:
    """What compare() measured: median rates (per second), the median of the per-round
    ratios, and the median of the per-round added time (µs a call: 1e6/ours - 1e6/base)."""

    ours: float
    base: float
    ratio: float
    added_us: float


def compare(
    label: str,
    ours: Callable[[int], None],
    base: Callable[[int], None],
    n: int,
    rounds: int = 21,
    target: float | None = None,
) -> Compared:
    """Short interleaved rounds of the baseline and ours, so that a noisy neighbour slows both
    alike; prints the median rates, the median of the per-round ratios (with its quartiles)
    and the median of the per-round added µs a call; ``target``: the ratio to reach."""
    ours_rates, base_rates = [], []
    for _ in range(rounds):
        base_rates.append(rate(base, n))
        ours_rates.append(rate(ours, n))
    o, b = statistics.median(ours_rates), statistics.median(base_rates)
    ratios = sorted(x / y for x, y in zip(ours_rates, base_rates))
    ratio = statistics.median(ratios)
    added = statistics.median(1e6 / x - 1e6 / y for x, y in zip(ours_rates, base_rates))
    verdict = "" if target is None else f"  {'ok' if ratio >= target else 'UNDER'} ({target:.0%})"
    print(
        f"{label:<44} {o:>7,.0f}/s vs {b:>7,.0f}/s  ratio {ratio:4.0%} "
        f"(quartiles {ratios[len(ratios) // 4]:.0%}..{ratios[3 * len(ratios) // 4]:.0%})  "
        f"+{added:5.1f} µs/call{verdict}",
        flush=True,
    )
    return Compared(o, b, ratio, added)


def elapsed_ms(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return (time.perf_counter() - start) * 1000


def timed_ms(func: Callable[[], object], repeat: int = 21) -> float:
    """The median time of ``func()`` in milliseconds."""
    return statistics.median(elapsed_ms(func) for _ in range(repeat))
