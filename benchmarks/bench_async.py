"""The async service (``aget``/``astep_to`` on redis.asyncio) against raw redis.asyncio in
the same run, on one event loop; then the sync service under ``sync_to_async`` (what an async
view did before the twins) for comparison.

Targets (issue 13): sequential ``await aget`` >= 85% of a raw ``await GET``, ``await
astep_to`` >= 75% of a raw ``await SET``; 100 concurrent tasks (``asyncio.gather``) of
``aget`` >= 75% of 100 concurrent raw GETs. Each line prints the median rates, the median of
the rounds' ratios (interleaved rounds, so a noisy neighbour slows both alike) with its
quartiles, and what we add a call, 1e6/ours - 1e6/base µs (median of the rounds'
differences). Environment: BENCH_N (2,000 calls a round), BENCH_ROUNDS (11).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio

from ._setup import FLOW_MAP, start_django

N = int(os.environ.get("BENCH_N", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))
TASKS = 100
SLUGS = ("hello->say_hello", "hello->ask_name")

Call = Callable[[int], Awaitable[object]]


async def arate(func: Call, n: int) -> float:
    """Calls a second of ``await func(i)``, one after the other."""
    start = time.perf_counter()
    for i in range(n):
        await func(i)
    return n / (time.perf_counter() - start)


async def arate_concurrent(func: Call, n: int) -> float:
    """Calls a second of ``func`` run by TASKS tasks at once, n calls in all."""
    each = n // TASKS

    async def task(t: int) -> None:
        for i in range(t * each, (t + 1) * each):
            await func(i)

    start = time.perf_counter()
    await asyncio.gather(*(task(t) for t in range(TASKS)))
    return each * TASKS / (time.perf_counter() - start)


async def acompare(
    label: str,
    ours: Call,
    base: Call,
    *,
    target: float | None = None,
    concurrent: bool = False,
) -> float:
    rate = arate_concurrent if concurrent else arate
    ours_rates, base_rates = [], []
    for _ in range(ROUNDS):
        base_rates.append(await rate(base, N))
        ours_rates.append(await rate(ours, N))
    o, b = statistics.median(ours_rates), statistics.median(base_rates)
    ratios = sorted(x / y for x, y in zip(ours_rates, base_rates))
    ratio = statistics.median(ratios)
    added = statistics.median(1e6 / x - 1e6 / y for x, y in zip(ours_rates, base_rates))
    verdict = "" if target is None else f"  {'ok' if ratio >= target else 'UNDER'} ({target:.0%})"
    print(
        f"{label:<52} {o:>7,.0f}/s vs {b:>7,.0f}/s  ratio {ratio:4.0%} "
        f"(quartiles {ratios[len(ratios) // 4]:.0%}..{ratios[3 * len(ratios) // 4]:.0%})  "
        f"+{added:6.1f} µs/call{verdict}",
        flush=True,
    )
    return ratio


async def run(url: str) -> None:
    from asgiref.sync import sync_to_async

    from stealth_sessions.service import get_session_service

    service = get_session_service()
    raw = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    users = [f"psid-{i:07d}" for i in range(1000)]
    for u in users:
        await service.astep_to(u, slug=SLUGS[0])
        await raw.set(f"raw:{u}", SLUGS[0])
    connection = await raw.connection_pool.get_connection()
    parser = type(connection._parser).__name__
    await raw.connection_pool.release(connection)
    print(f"redis-py {redis.__version__} asyncio ({parser}); {N:,} calls a round, {ROUNDS} rounds")

    async def ours_get(i: int) -> object:
        return await service.aget(users[i % 1000])

    async def raw_get(i: int) -> object:
        return await raw.get(f"raw:{users[i % 1000]}")

    async def ours_step(i: int) -> object:
        return await service.astep_to(users[i % 1000], slug=SLUGS[(i // 1000) % 2 ^ 1])

    async def raw_set(i: int) -> object:
        return await raw.set(f"raw:{users[i % 1000]}", SLUGS[(i // 1000) % 2])

    sync_get = sync_to_async(service.get)
    sync_step = sync_to_async(service.step_to)

    async def thread_get(i: int) -> object:
        return await sync_get(users[i % 1000])

    async def thread_step(i: int) -> object:
        return await sync_step(users[i % 1000], slug=SLUGS[(i // 1000) % 2 ^ 1])

    print("\nSequential, one task:")
    await acompare("await aget vs raw await GET", ours_get, raw_get, target=0.85)
    await acompare("await astep_to vs raw await SET", ours_step, raw_set, target=0.75)
    print(f"\n{TASKS} concurrent tasks (asyncio.gather):")
    await acompare(f"{TASKS} tasks of aget vs {TASKS} of raw GET", ours_get, raw_get,
                   target=0.75, concurrent=True)  # fmt: skip
    await acompare(f"{TASKS} tasks of astep_to vs {TASKS} of raw SET", ours_step, raw_set,
                   concurrent=True)  # fmt: skip
    print("\nFor comparison, the sync service under sync_to_async (a thread hop a call):")
    await acompare("sync_to_async(get) vs raw await GET", thread_get, raw_get)
    await acompare("sync_to_async(step_to) vs raw await SET", thread_step, raw_set)
    await acompare(f"{TASKS} tasks of sync_to_async(get) vs raw GET", thread_get, raw_get,
                   concurrent=True)  # fmt: skip
    await service.aclose()
    await raw.aclose()


def main() -> None:
    server = start_django(FLOW_MAP=FLOW_MAP)
    try:
        asyncio.run(run(server.url))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
