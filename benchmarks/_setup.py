"""Shared by the benchmarks: a private redis-server and Django configured against it."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import django
from django.conf import settings

from botproject.redis_server import RedisServer


def start_django(**stealth: object) -> RedisServer:
    """Start a private redis-server and configure Django on it (once per process)."""
    server = RedisServer().start()
    os.environ["REDIS_URL"] = server.url
    settings.configure(
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "stealth_sessions"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 5},
            }
        },
        STEALTH_SESSIONS=stealth,
    )
    django.setup()
    return server


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


def timed_ms(func: Callable[[], object], repeat: int = 21) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
