"""SessionService against raw redis-py (hiredis) on one connection, in the same run; then
counts and pages with 1,000,000 sessions loaded, on a single Redis and on a Redis Cluster.

Throughput targets (issue 2): step_to >= 75% of a raw SET, get >= 90% of a raw GET, both
without SESSION_TTL (the default) and with one (30 days). With an expiry the baseline of
step_to is ``SET key value EX ttl`` (a raw write that expires too); that of get stays a
plain GET. Each line prints the ratio (median of 21 interleaved rounds' ratios) and what we
add in absolute time, 1e6/ours - 1e6/base µs a call (median of the rounds' differences).
With an expiry, a get slides it at most once a minute per user (a script call); this run's
gets all fall within that minute, as all but about one in (60 s x reads a second) do.

With 1,000,000 sessions loaded (targets: count_by_state() and a page of
list_sessions(slug=...) under 50 ms each): the counts, the first page of a slug, "a later
page" (the page of a slug's list, newest activity first, that starts halfway down it: at a
million, after row 83,333 of the 166,666 users at order->confirm; its cursor is found by
following real next_cursors, 1,000 rows at a time), and a prefix search. Then the counts
and the first page again on a 3-master Redis Cluster (botproject.redis_server.RedisCluster,
through the ClusterClient cache backend), with BENCH_CLUSTER_SESSIONS users loaded.
Environment: BENCH_N (2,000 operations a round), BENCH_SESSIONS (1,000,000),
BENCH_CLUSTER_SESSIONS (1,000,000; 0 skips the cluster).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis

from botproject.redis_server import RedisCluster

from ._setup import FLOW_MAP, compare, elapsed_ms, load_sessions, start_django, timed_ms

if TYPE_CHECKING:
    from stealth_sessions.service import SessionService

N = int(os.environ.get("BENCH_N", "2000"))
MILLION = int(os.environ.get("BENCH_SESSIONS", "1000000"))
CLUSTER_SESSIONS = int(os.environ.get("BENCH_CLUSTER_SESSIONS", "1000000"))
SLUGS = ("hello->say_hello", "hello->ask_name")
LISTED = "order->confirm"
TTL = 30 * 24 * 3600
TARGET_MS = 50.0


def main() -> None:
    cluster = RedisCluster(3).start() if CLUSTER_SESSIONS else None
    caches: dict[str, object] = {}
    if cluster is not None:
        caches["cluster"] = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": cluster.urls,
            "OPTIONS": {
                "CLIENT_CLASS": "stealth_sessions.cluster.ClusterClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 30,  # a loader's pipeline of 5,000 scripts
            },
        }
    server = start_django(caches=caches, FLOW_MAP=FLOW_MAP)
    from stealth_sessions.service import SessionService, get_session_service
    from stealth_sessions.store import from_cache

    service = get_session_service()
    with_ttl = SessionService(service.store, flow_map=service.flow_map, ttl=TTL)
    raw = redis.Redis.from_url(server.url)
    parser = type(raw.connection_pool.get_connection()._parser).__name__
    print(f"redis-py {redis.__version__} ({parser}), a flow map of 4 flows")

    print(f"\nThroughput, one connection, one thread ({N:,} calls a round, 21 interleaved rounds):")
    throughput(service, raw, "", None)
    throughput(with_ttl, raw, "ttl-", TTL)

    print(f"\nLoading {MILLION:,} sessions ...", flush=True)
    print(f"loaded in {elapsed_ms(lambda: load_sessions(service, MILLION)) / 1000:.0f} s")
    counts = service.count_by_state()
    assert sum(counts.values()) == MILLION + 2000, counts  # and the throughput's users
    report("count_by_state()", service.count_by_state, sum(counts.values()))
    page, cursor = service.list_sessions(slug=LISTED, limit=50)
    assert len(page) == 50 and cursor
    report(
        f"list_sessions(slug={LISTED!r}, limit=50), first page",
        lambda: service.list_sessions(slug=LISTED, limit=50),
    )
    depth = counts[LISTED] // 2
    cursor = cursor_at(service, depth, slug=LISTED)
    page, _ = service.list_sessions(slug=LISTED, cursor=cursor, limit=50)
    assert len(page) == 50
    report(
        f"list_sessions(slug={LISTED!r}, limit=50), the page after row {depth:,} of "
        f"{counts[LISTED]:,}",
        lambda: service.list_sessions(slug=LISTED, cursor=cursor, limit=50),
    )
    report(
        "list_sessions(user_id_prefix='user-0042', limit=50)",
        lambda: service.list_sessions(user_id_prefix="user-0042", limit=50),
    )
    print(f"redis used_memory: {raw.info('memory')['used_memory_human']}")

    if cluster is not None:
        raw.flushall()  # the memory back, for the cluster's nodes
        on_cluster = SessionService(from_cache("cluster", "stealth"), flow_map=service.flow_map)
        nodes = [redis.Redis(port=node.port) for node in cluster.nodes]
        print(f"\nA Redis Cluster of {len(nodes)} masters: loading {CLUSTER_SESSIONS:,} ...")
        ms = elapsed_ms(lambda: load_sessions(on_cluster, CLUSTER_SESSIONS))
        print(f"loaded in {ms / 1000:.0f} s ({CLUSTER_SESSIONS / ms * 1000:,.0f} users/s)")
        counts = on_cluster.count_by_state()
        assert sum(counts.values()) == CLUSTER_SESSIONS, counts
        assert len(on_cluster.list_sessions(slug=LISTED, limit=50)[0]) == 50
        for label, func in (
            ("count_by_state(), on the cluster", on_cluster.count_by_state),
            (
                f"list_sessions(slug={LISTED!r}, limit=50), on the cluster",
                lambda: on_cluster.list_sessions(slug=LISTED, limit=50),
            ),
        ):
            getkeys(nodes)
            report(label, func, CLUSTER_SESSIONS)
            print(
                f"    (redis-py sent {getkeys(nodes) / 21:.0f} COMMAND GETKEYS round trips a "
                "call, to find the keys of its EVALSHAs)"
            )
        cluster.stop()
    server.stop()


def throughput(service: SessionService, raw: redis.Redis, prefix: str, ttl: int | None) -> None:
    """step_to vs a raw SET (with EX when ``ttl``) and get vs a raw GET, on 1,000 users."""
    users = [f"{prefix}psid-{i:07d}" for i in range(1000)]
    for u in users:
        service.step_to(u, slug=SLUGS[0])
        raw.set(f"raw:{u}", SLUGS[0], ex=ttl)
    label = "no expiry" if ttl is None else f"SESSION_TTL={ttl // 86400} days"

    def ours_step(i: int) -> None:
        service.step_to(users[i % 1000], slug=SLUGS[(i // 1000) % 2 ^ 1])

    def raw_set(i: int) -> None:
        raw.set(f"raw:{users[i % 1000]}", SLUGS[(i // 1000) % 2], ex=ttl)

    def ours_get(i: int) -> None:
        service.get(users[i % 1000])

    def raw_get(i: int) -> None:
        raw.get(f"raw:{users[i % 1000]}")

    set_label = "SET" if ttl is None else "SET EX"
    compare(f"step_to vs raw {set_label} ({label})", ours_step, raw_set, N, target=0.75)
    server_time(raw, (ours_step, ("evalsha",)), (raw_set, ("set",)))
    compare(f"get vs raw GET ({label})", ours_get, raw_get, N, target=0.90)
    server_time(raw, (ours_get, ("mget", "evalsha")), (raw_get, ("get",)))


def server_time(raw: redis.Redis, *runs: tuple[Callable[[int], None], tuple[str, ...]]) -> None:
    """What the server spends a call on ours and on the baseline, by INFO commandstats over
    N more calls of each alone, alternated 5 times (medians): a script's time includes the
    commands it calls, which commandstats also counts under their own names."""
    spent: list[list[float]] = [[] for _ in runs]
    made = [""] * len(runs)
    for _ in range(5):
        for run, (func, names) in enumerate(runs):
            raw.config_resetstat()
            for i in range(N):
                func(i)
            stats = {k.removeprefix("cmdstat_"): v for k, v in raw.info("commandstats").items()}
            spent[run].append(sum(stats[name]["usec"] for name in names if name in stats) / N)
            made[run] = " + ".join(n.upper() for n in names if n in stats)
    ours, base = (f"{statistics.median(t):5.1f} µs ({m})" for t, m in zip(spent, made))
    print(f"    server time a call (commandstats, median of 5): ours {ours}, raw {base}")


def report(label: str, func: Callable[[], object], sessions: int | None = None) -> None:
    at = "" if sessions is None else f" at {sessions:,} sessions"
    ms = timed_ms(func)
    verdict = "ok" if ms < TARGET_MS else "OVER TARGET"
    print(f"{label}{at}: {ms:.2f} ms (median of 21; target {TARGET_MS:.0f} ms: {verdict})")


def getkeys(nodes: list[redis.Redis]) -> int:
    """COMMAND GETKEYS calls the cluster's nodes served since the last call (then reset)."""
    calls = 0
    for node in nodes:
        stats = node.info("commandstats")
        calls += sum(v["calls"] for k, v in stats.items() if k.endswith("|getkeys"))
        node.config_resetstat()
    return calls


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
