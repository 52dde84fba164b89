"""Redis memory a user takes (``used_memory`` growth divided by the users), ours against
Stealth's own layout, loaded in the same run on the same private redis-server.

Targets (issue): at most 500 bytes a user after one transition, 1,000 with 20 transitions
kept in the history, and SESSION_TTL adding at most 100.

Users have phone-number ids (``+1555`` and 7 digits). Each is written by the store's own
transition script (benchmarks/_setup.py load_sessions, HISTORY_LENGTH 50): in round r, user
i steps to SLUGS[(i + r) % 8], a walk through the demo's flows, so every step is a real
transition with a source. Stealth's layout, loaded the same way (pipelined): ``SET <id>
<slug>`` after one transition (a first step has no previous), plus ``SET <id>-previous
<previous slug>`` after 20; with an EXPIRE on each key in the TTL variant. No back_to.

Each figure starts from a FLUSHALL (the scripts stay loaded) and is read once the main
dictionaries have finished growing (DEBUG HTSTATS shows no rehashing: a growing table holds
its old and new bucket arrays at once), with the loading connections closed (their buffers
freed). The TTL variant after 20 transitions is the same users stepping to their current
slug with the expiry (the script then only gives the keys an expiry and slides the activity:
the state a user who made all 20 steps with SESSION_TTL set would be in), which saves a
second 20 rounds. "A history entry" is the growth from 10 to 20 transitions divided by 10:
the README's sizing rule.

Then, where the bytes go after 20 transitions: MEMORY USAGE of the keys of 1,000 users
(each includes its key name and dictionary entry), of the shard keys over all users, and
what is left (the keyspace's bucket arrays, mostly).
Environment: BENCH_MEMORY_USERS ("100000,1000000"). On this project's 2-core machine 100,000
users take 4 minutes and a million about 50 (22 million transition scripts, 8,000 to 12,000
a second, the server's share of the work the larger: BENCH_MEMORY_USERS=100000 for a quick run).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import redis

from ._setup import FLOW_MAP, load_sessions, start_django

USERS = tuple(int(n) for n in os.environ.get("BENCH_MEMORY_USERS", "100000,1000000").split(","))
SLUGS = (
    "hello->say_hello",
    "hello->ask_name",
    "hello->get_name",
    "order->ask_size",
    "order->ask_topping",
    "order->confirm",
    "follow_up->nudge",
    "goodbye->say_bye",
)
TTL_S = 30 * 24 * 3600
HISTORY_LENGTH = 50
TARGETS = {"1": 500, "20": 1000, "ttl": 100}
SAMPLE = 1000


def phone(i: int) -> str:
    return f"+1555{i:07d}"


def main() -> None:
    server = start_django(redis_args=("--enable-debug-command", "local"), FLOW_MAP=FLOW_MAP)
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    client = redis.Redis.from_url(server.url)  # measures; the store's client loads
    client.script_load(service.store.scripts.transition.script)  # before any baseline
    version = client.info("server")["redis_version"]
    print(f"redis-server {version}, HISTORY_LENGTH {HISTORY_LENGTH}, ids like {phone(42)}")
    for n in USERS:
        measure(service, client, n)
    server.stop()


def measure(service: object, client: redis.Redis, n: int) -> None:
    from stealth_sessions.service import SessionService

    assert isinstance(service, SessionService)
    started = time.monotonic()
    print(f"\n{n:,} users", flush=True)

    def grown(load: Callable[[], object]) -> float:
        """Bytes a user: used_memory after ``load()`` minus before (both settled), / n."""
        before = settled(client, service)
        load()
        return (settled(client, service) - before) / n

    def fresh() -> None:
        client.flushall()

    def stealth(rounds: int, ttl: int | None) -> Callable[[], None]:
        return lambda: load_stealth(client, n, rounds, ttl)

    def ours(rounds: range, ttl: bool = False) -> Callable[[], None]:
        ttl_ms = TTL_S * 1000 if ttl else None
        return lambda: load_sessions(
            service, n, SLUGS, phone, rounds=rounds, ttl_ms=ttl_ms, history_length=HISTORY_LENGTH
        )

    figures: dict[str, float] = {}
    for rounds in (1, 20):
        for ttl in (None, TTL_S):
            fresh()
            figures[f"stealth {rounds}{' ttl' if ttl else ''}"] = grown(stealth(rounds, ttl))
    fresh()
    figures["ours 1 ttl"] = grown(ours(range(1), ttl=True))
    fresh()
    figures["ours 1"] = grown(ours(range(1)))
    check(service, client, n, 1, False)
    usage_1 = where(client, service, n, figures["ours 1"])
    step = grown(ours(range(1, 10)))
    figures["ours 10"] = figures["ours 1"] + step
    figures["ours 20"] = figures["ours 10"] + grown(ours(range(10, 20)))
    check(service, client, n, 20, False)
    usage_20 = where(client, service, n, figures["ours 20"])
    figures["ours 20 ttl"] = figures["ours 20"] + grown(ours(range(19, 20), ttl=True))
    check(service, client, n, 20, True)
    fresh()

    print(
        f"{'used_memory growth a user':<40} {'ours':>7} {'Stealth':>8} {'ours - Stealth':>15}"
        f"   target"
    )
    for label, key, target in (
        ("after one transition", "1", f"<= {TARGETS['1']} B"),
        ("  with SESSION_TTL (30 days)", "1 ttl", ""),
        ("with 20 transitions in the history", "20", f"<= {TARGETS['20']} B"),
        ("  with SESSION_TTL (30 days)", "20 ttl", ""),
    ):
        ours_b, theirs = figures[f"ours {key}"], figures[f"stealth {key}"]
        limit = TARGETS["20" if key.startswith("20") else "1"]
        verdict = "" if not target else "  ok" if ours_b <= limit else "  OVER TARGET"
        print(
            f"{label:<40} {ours_b:>7.0f} {theirs:>8.0f} {ours_b - theirs:>+15.0f}   {target}"
            f"{verdict}"
        )
    for rounds in ("1", "20"):
        added = figures[f"ours {rounds} ttl"] - figures[f"ours {rounds}"]
        theirs = figures[f"stealth {rounds} ttl"] - figures[f"stealth {rounds}"]
        verdict = "ok" if added <= TARGETS["ttl"] else "OVER TARGET"
        print(
            f"SESSION_TTL adds, {rounds:>2} transition(s): {added:+5.0f} B a user (Stealth: "
            f"{theirs:+.0f} B); target <= +{TARGETS['ttl']} B: {verdict}"
        )
    entry = (figures["ours 20"] - figures["ours 10"]) / 10
    print(
        f"a history entry (10 -> 20 transitions): {entry:.1f} B "
        f"(1 -> 10: {(figures['ours 10'] - figures['ours 1']) / 9:.1f} B)"
    )
    for label, usage in (("after one transition", usage_1), ("after 20", usage_20)):
        print(f"where the bytes go, {label}: " + ", ".join(f"{k} {v:.0f}" for k, v in usage))
    print(f"({(time.monotonic() - started) / 60:.0f} min)", flush=True)


def settled(client: redis.Redis, service: object) -> int:
    """used_memory once the loading connections are closed and db 0's dictionaries are done
    rehashing (Redis moves their buckets in the background, about 1 ms every 100 ms)."""
    service.store.client.connection_pool.disconnect()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 300
    while b"rehashing target" in client.execute_command("DEBUG", "HTSTATS", "0"):
        if time.monotonic() > deadline:
            raise RuntimeError("db 0 still rehashing after 5 minutes")
        time.sleep(0.2)
    return int(client.info("memory")["used_memory"])


def load_stealth(client: redis.Redis, n: int, rounds: int, ttl: int | None) -> None:
    """Stealth's keys as they are after ``rounds`` steps of each user (1: no previous)."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        user = phone(i)
        pipe.set(user, SLUGS[(i + rounds - 1) % len(SLUGS)])
        if ttl:
            pipe.expire(user, ttl)
        if rounds > 1:
            pipe.set(f"{user}-previous", SLUGS[(i + rounds - 2) % len(SLUGS)])
            if ttl:
                pipe.expire(f"{user}-previous", ttl)
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def check(service: object, client: redis.Redis, n: int, rounds: int, ttl: bool) -> None:
    """The loaded users are where they should be, with the history and expiry expected."""
    from stealth_sessions.service import SessionService

    assert isinstance(service, SessionService)
    assert sum(service.count_by_state().values()) == n
    for i in (0, n // 2, n - 1):
        user = phone(i)
        session = service.peek(user)
        assert session is not None and session.slug == SLUGS[(i + rounds - 1) % len(SLUGS)]
        assert session.version == rounds, (session, rounds)
        assert len(service.history(user)) == rounds
        expiry = client.pttl(service.store.keys.user(user).session)
        assert (expiry > 0) if ttl else (expiry == -1), expiry


def where(client: redis.Redis, service: object, n: int, total: float) -> list[tuple[str, float]]:
    """Bytes a user by kind of key: MEMORY USAGE of SAMPLE users' keys (averaged) and of the
    shard keys (over all users, / n), and what is left of ``total``, the growth a user."""
    from stealth_sessions.service import SessionService

    assert isinstance(service, SessionService)
    keys = service.store.keys
    pipe = client.pipeline(transaction=False)
    for i in range(0, n, max(1, n // SAMPLE)):
        k = keys.user(phone(i))
        for key in (k.session, k.previous, k.data):
            pipe.execute_command("MEMORY", "USAGE", key)
    sampled = pipe.execute()
    session = statistics.mean(x or 0 for x in sampled[0::3])
    previous = statistics.mean(x or 0 for x in sampled[1::3])
    data = statistics.mean(x or 0 for x in sampled[2::3])
    for shard in keys.shards:
        for key in (shard.sessions, shard.slugs, shard.codes):
            pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", 0)
    shards = pipe.execute()
    index = sum(shards[0::3]) / n
    other_shard = (sum(shards[1::3]) + sum(shards[2::3])) / n
    return [
        ("session", session),
        ("previous", previous),
        ("data", data),
        ("sessions index", index),
        ("slugs+codes", other_shard),
        ("rest", total - session - previous - data - index - other_shard),
    ]
