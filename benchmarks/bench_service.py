"""SessionService against raw redis-py (hiredis) on one connection, in the same run.

Targets (issue 2): step_to >= 75% of a raw SET, get >= 80% of a raw GET; with 1,000,000
sessions loaded, count_by_state() and a page of list_sessions(slug=...) under 50 ms each.

"A later page" is the page of a slug's list (newest activity first) that starts halfway down
it (at a million, after row 83,333 of the 166,666 users at order->confirm): its cursor is
found by following real next_cursors, 1,000 rows at a time (the largest limit); then a page
of 50 from that cursor is timed.
Environment: BENCH_N (2,000 operations a round), BENCH_SESSIONS (1,000,000).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import redis

from ._setup import FLOW_MAP, compare, elapsed_ms, load_sessions, start_django, timed_ms

if TYPE_CHECKING:
    from stealth_sessions.service import SessionService

N = int(os.environ.get("BENCH_N", "2000"))
MILLION = int(os.environ.get("BENCH_SESSIONS", "1000000"))
SLUGS = ("hello->say_hello", "hello->ask_name")
LISTED = "order->confirm"


def main() -> None:
    server = start_django(FLOW_MAP=FLOW_MAP)
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    raw = redis.Redis.from_url(server.url)
    parser = type(raw.connection_pool.get_connection()._parser).__name__
    print(f"redis-py {redis.__version__} ({parser}), a flow map of 4 flows")
    users = [f"psid-{i:07d}" for i in range(1000)]
    for u in users:
        service.step_to(u, slug=SLUGS[0])
        raw.set(f"raw:{u}", SLUGS[0])

    def ours_step(i: int) -> None:
        service.step_to(users[i % 1000], slug=SLUGS[(i // 1000) % 2 ^ 1])

    def raw_set(i: int) -> None:
        raw.set(f"raw:{users[i % 1000]}", SLUGS[(i // 1000) % 2])

    def ours_get(i: int) -> None:
        service.get(users[i % 1000])

    def raw_get(i: int) -> None:
        raw.get(f"raw:{users[i % 1000]}")

    print("\nThroughput, one connection, one thread (21 interleaved rounds):")
    compare("step_to(user, slug=...) vs raw SET", ours_step, raw_set, N)
    compare("get(user) vs raw GET", ours_get, raw_get, N)

    print(f"\nLoading {MILLION:,} sessions ...", flush=True)
    print(f"loaded in {elapsed_ms(lambda: load_sessions(service, MILLION)) / 1000:.0f} s")
    counts = service.count_by_state()
    assert sum(counts.values()) == MILLION + 1000, counts
    print(
        f"count_by_state() at {sum(counts.values()):,} sessions: "
        f"{timed_ms(service.count_by_state):.2f} ms (median of 21)"
    )
    page, cursor = service.list_sessions(slug=LISTED, limit=50)
    assert len(page) == 50 and cursor
    print(
        f"list_sessions(slug={LISTED!r}, limit=50), first page: "
        f"{timed_ms(lambda: service.list_sessions(slug=LISTED, limit=50)):.2f} ms"
    )
    depth = counts[LISTED] // 2
    cursor = cursor_at(service, depth, slug=LISTED)
    page, _ = service.list_sessions(slug=LISTED, cursor=cursor, limit=50)
    assert len(page) == 50
    print(
        f"list_sessions(slug={LISTED!r}, limit=50), the page after row {depth:,} "
        f"of {counts[LISTED]:,}: "
        f"{timed_ms(lambda: service.list_sessions(slug=LISTED, cursor=cursor, limit=50)):.2f} ms"
    )
    print(
        "list_sessions(user_id_prefix='user-0042', limit=50): "
        f"{timed_ms(lambda: service.list_sessions(user_id_prefix='user-0042', limit=50)):.2f} ms"
    )
    print(f"redis used_memory: {raw.info('memory')['used_memory_human']}")
    server.stop()


def cursor_at(service: SessionService, depth: int, **filters: str) -> str:
    """The next_cursor after the first ``depth`` rows of a listing, by following cursors."""
    cursor = None
    while depth > 0:
        page, cursor = service.list_sessions(**filters, cursor=cursor, limit=min(depth, 1000))
        assert cursor is not None, "the listing ended first"
        depth -= len(page)
    assert cursor is not None
    return cursor


if __name__ == "__main__":
    main()
