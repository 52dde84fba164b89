"""Export and import rates (``manage.py stealth_sessions export`` / ``import``, through
``service.transfer``) with BENCH_TRANSFER_SESSIONS sessions loaded (default 1,000,000), on a
private redis-server: users/s of each, the file's size, and whether exporting again gave the
same bytes."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from ._setup import FLOW_MAP, LOAD_SLUGS, start_django

SESSIONS = int(os.environ.get("BENCH_TRANSFER_SESSIONS", "1000000"))


def load(service, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` users, each moved twice (two history entries), by the store's transition
    script on a pipeline (the layout is exactly the service's)."""
    store = service.store
    sha = store.scripts.transition.sha
    store.client.script_load(store.scripts.transition.script)
    pipe = store.client.pipeline(transaction=False)
    for i in range(count):
        for slug in (LOAD_SLUGS[(i + 1) % len(LOAD_SLUGS)], LOAD_SLUGS[i % len(LOAD_SLUGS)]):
            keys, args = store.transition_call(
                f"user-{i:08d}", slug, False, None, None, "step_to", service.history_length
            )
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        if i % 2500 == 2499:
            pipe.execute()
    pipe.execute()


def export(service, path: Path) -> int:  # type: ignore[no-untyped-def]
    from stealth_sessions.management.commands.stealth_sessions import _json

    n = 0
    with path.open("w") as out:
        for page in service.transfer.export():
            out.write("".join(_json(record) + "\n" for record in page))
            n += len(page)
    return n


def import_file(service, path: Path) -> int:  # type: ignore[no-untyped-def]
    from stealth_sessions.transfer import BATCH

    transfer = service.transfer
    written = 0
    batch = []
    with path.open() as f:
        for line in f:
            batch.append(transfer.parse_record(line))
            if len(batch) == BATCH:
                written += sum(transfer.import_records(batch))
                batch = []
    return written + sum(transfer.import_records(batch))


def main() -> None:
    server = start_django(FLOW_MAP=FLOW_MAP)
    try:
        from stealth_sessions.service import get_session_service

        service = get_session_service()
        start = time.perf_counter()
        load(service, SESSIONS)
        print(f"loaded {SESSIONS:,} sessions in {time.perf_counter() - start:.0f} s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            first, second = Path(tmp, "first.jsonl"), Path(tmp, "second.jsonl")
            start = time.perf_counter()
            n = export(service, first)
            took = time.perf_counter() - start
            size = first.stat().st_size
            print(
                f"export: {n:,} users in {took:.1f} s, {n / took:,.0f} users/s "
                f"({size / 1e6:,.0f} MB, {size / n:,.0f} bytes a user)",
                flush=True,
            )
            service.store.client.flushdb()
            start = time.perf_counter()
            n = import_file(service, first)
            took = time.perf_counter() - start
            print(f"import: {n:,} users in {took:.1f} s, {n / took:,.0f} users/s", flush=True)
            export(service, second)
            same = first.read_bytes() == second.read_bytes()
            print(f"export, wipe, import, export: {'the same bytes' if same else 'DIFFERENT'}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
