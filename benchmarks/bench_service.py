"""SessionService against raw redis-py (hiredis) on one connection, in the same run.

Targets (issue 2): step_to >= 75% of a raw SET, get >= 80% of a raw GET; with 1,000,000
sessions loaded, count_by_state() and a page of list_sessions(slug=...) under 50 ms each.
"""

from __future__ import annotations

import os

import redis

from stealth_sessions.flows import FlowMap, State
from stealth_sessions.store import RedisStore

from ._setup import compare, start_django, timed_ms

N = int(os.environ.get("BENCH_N", "2000"))
MILLION = int(os.environ.get("BENCH_SESSIONS", "1000000"))
SLUGS = ("hello->say_hello", "hello->ask_name")
MIDDLE = f"user-{MILLION // 2:08d}"

# The demo's flows, without its bot actions (they would schedule steps).
flow_map = FlowMap()
flow_map.flow(
    "hello", ["say_hello", "ask_name", "get_name", State("say_hola", redirects_to="say_hello")]
)
flow_map.flow("order", ["ask_size", "ask_topping", "confirm"])
flow_map.flow("follow_up", ["nudge", "give_up"])
flow_map.flow("goodbye", ["say_bye"])


def main() -> None:
    server = start_django(FLOW_MAP="benchmarks.bench_service.flow_map")
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
    store = service.store
    pipe = store.client.pipeline(transaction=False)
    flows = (
        "hello->say_hello",
        "hello->ask_name",
        "hello->get_name",
        "order->ask_size",
        "order->confirm",
        "goodbye->say_bye",
    )
    # The store's own transition script, queued on a pipeline: fast loading, same layout.
    store.client.script_load(store._transition.source)
    loader = RedisStore(pipe, store.keys)
    for i in range(MILLION):
        loader.transition(
            f"user-{i:08d}",
            flows[i % len(flows)],
            update=False,
            expected_version=None,
            ttl_ms=None,
            method="step_to",
            history_length=50,
        )
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    counts = service.count_by_state()
    assert sum(counts.values()) == MILLION + 1000, counts
    print(
        f"count_by_state() at {sum(counts.values()):,} sessions: "
        f"{timed_ms(service.count_by_state):.2f} ms (median of 21)"
    )
    page, cursor = service.list_sessions(slug="order->confirm", limit=50)
    assert len(page) == 50 and cursor
    print(
        "list_sessions(slug=..., limit=50), first page: "
        f"{timed_ms(lambda: service.list_sessions(slug='order->confirm', limit=50)):.2f} ms"
    )
    print(
        "list_sessions(slug=..., limit=50), a later page: "
        f"{timed_ms(lambda: service.list_sessions(slug='order->confirm', cursor=MIDDLE)):.2f} ms"
    )
    print(
        "list_sessions(user_id_prefix='user-0042', limit=50): "
        f"{timed_ms(lambda: service.list_sessions(user_id_prefix='user-0042', limit=50)):.2f} ms"
    )
    print(f"redis used_memory: {raw.info('memory')['used_memory_human']}")
    server.stop()


if __name__ == "__main__":
    main()
