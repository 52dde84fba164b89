"""The Django Tasks part of bench_scheduling (run in its own process: other settings)."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from botproject.redis_server import RedisServer

N = int(os.environ.get("BENCH_STEPS", "10000"))


def main() -> None:
    server = RedisServer().start()
    handle, db = tempfile.mkstemp(suffix=".sqlite3")
    os.close(handle)
    os.environ.update(
        REDIS_URL=server.url,
        BENCH_TASKS_DB=db,
        DJANGO_SETTINGS_MODULE="benchmarks.tasks_settings",
    )
    import django

    django.setup()
    from django.core.management import call_command

    from stealth_sessions.service import get_session_service

    call_command("migrate", verbosity=0)
    service = get_session_service()
    target = "follow_up->nudge"
    rates = []
    for r in range(5):
        start = time.perf_counter()
        for i in range(1000):
            service.step_to_in(f"rate-{r}-{i}", 3600, slug=target, if_unchanged=True)
        rates.append(1000 / (time.perf_counter() - start))
    rate = statistics.median(rates)
    print(
        "step_to_in (store + Tasks enqueue, django-tasks-db on SQLite), one thread: "
        f"{rate:,.0f} steps/s (median of 5)"
    )
    service.store.client.flushdb()
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.all().delete()

    due = datetime.now(UTC) + timedelta(seconds=math.ceil(N / rate) + 3)
    command = [sys.executable, "-m", "django", "db_worker", "--interval", "0.1"]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        users = [f"lag-{i:05d}" for i in range(N)]
        for user in users:
            service.step_to_at(user, due, slug=target)
        while service.store.pending_steps_count():
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(20)
    lags = []
    for user in users:
        [outcome] = service.scheduled_step_outcomes(user)
        assert outcome.outcome == "applied"
        lags.append((outcome.at - due).total_seconds())
    lags.sort()
    print(
        f"{N:,} steps due at once, 1 db_worker (SQLite allows one writer): lag due -> applied "
        f"median {statistics.median(lags):.2f} s, p95 {lags[int(len(lags) * 0.95)]:.2f} s, "
        f"max {lags[-1]:.2f} s ({N / max(lags[-1] - lags[0], 1e-9):,.0f} steps/s)"
    )
    server.stop()
    os.unlink(db)


if __name__ == "__main__":
    main()
