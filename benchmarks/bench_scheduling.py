"""Scheduled steps on RQ: steps scheduled per second, and the lag from due time to applied
for BENCH_STEPS (10,000) steps due at once, drained by 2 ``rqworker --with-scheduler``
processes (SimpleWorker: RQ's default Worker forks per job, ~60 ms each). Private redis-server.
Then the same on Django's Tasks framework (DjangoTasksScheduler with django-tasks-db on a
SQLite file, drained by one ``db_worker``), in a process of its own (benchmarks/
_scheduling_tasks.py: other settings).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from botproject.redis_server import RedisServer

N = int(os.environ.get("BENCH_STEPS", "10000"))
WORKERS = 2


def main() -> None:
    server = RedisServer().start()
    os.environ.update(REDIS_URL=server.url, DEMO_DB=":memory:")
    os.environ["DJANGO_SETTINGS_MODULE"] = "botproject.settings"
    print("RQ:")
    import django

    django.setup()
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    target = "follow_up->nudge"

    rates = []
    for r in range(5):
        start = time.perf_counter()
        for i in range(2000):
            service.step_to_in(f"rate-{r}-{i}", 3600, slug=target, if_unchanged=True)
        rates.append(2000 / (time.perf_counter() - start))
    rate = statistics.median(rates)
    print(f"step_to_in (store + RQ enqueue_at), one thread: {rate:,.0f} steps/s (median of 5)")
    service.store.client.flushdb()

    due = datetime.now(UTC) + timedelta(seconds=math.ceil(N / rate) + 3)
    due = due.replace(microsecond=0)
    command = [sys.executable, "-m", "django", "rqworker", "default", "--with-scheduler",
               "--worker-class", "rq.worker.SimpleWorker"]  # fmt: skip
    workers = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(WORKERS)
    ]
    try:
        users = [f"lag-{i:05d}" for i in range(N)]
        for user in users:
            service.step_to_at(user, due, slug=target)
        while service.store.pending_steps_count():
            time.sleep(0.1)
        drained = datetime.now(UTC)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
    lags = []
    for user in users:
        [outcome] = service.scheduled_step_outcomes(user)
        assert outcome.outcome == "applied"
        lags.append((outcome.at - due).total_seconds())
    lags.sort()
    print(
        f"{N:,} steps due at once, {WORKERS} workers: lag due -> applied median "
        f"{statistics.median(lags):.2f} s, p95 {lags[int(len(lags) * 0.95)]:.2f} s, "
        f"max {lags[-1]:.2f} s; all applied {(drained - due).total_seconds():.1f} s after due "
        f"({N / max(lags[-1] - lags[0], 1e-9):,.0f} steps/s)"
    )
    server.stop()
    print("\nDjango's Tasks framework:", flush=True)
    subprocess.run([sys.executable, "-m", "benchmarks._scheduling_tasks"], check=True)
