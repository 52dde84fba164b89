"""Rule 8: concurrent writers in several processes never lose an update, and never leave
current, previous, version, history and the indexes disagreeing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USERS = ("u1", "u2", "whatsapp:+4477")


def run_writers(count: int, ops: int) -> list[list]:
    """Half the writers have a pre_transition receiver (read, then conditional write)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_writer", str(seed), str(ops), str(seed % 2)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(count)
    ]
    rows = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        rows += [json.loads(line) for line in out.splitlines()]
    return rows


@pytest.mark.slow
def test_concurrent_writers_lose_nothing_and_agree(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "HISTORY_LENGTH": 100_000}
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    rows = run_writers(count=4, ops=500)
    assert len(rows) > 1000
    for user in USERS:
        session = service.peek(user)
        history = service.history(user, limit=100_000)[::-1]  # oldest first
        # One unbroken chain: each transition starts where the one before it ended.
        assert history[0].source is None
        for before, after in zip(history, history[1:]):
            assert after.source == before.target
        assert (session.slug, session.previous) == (history[-1].target, history[-1].source)
        # Every write is counted once: transitions in the history, back-to writes beside it.
        back_to_writes = sum(1 for r in rows if r[0] == user and r[1] == "set_back_to")
        assert session.version == len(history) + back_to_writes
        # No two writers were handed the same new version of a session.
        set_back_versions = [r[3] for r in rows if r[0] == user and r[1] == "set_back_to"]
        assert len(set_back_versions) == len(set(set_back_versions))
    counts = service.count_by_state()
    assert sum(counts.values()) == len(USERS)
    for user in USERS:
        slug = service.peek(user).slug
        assert counts[slug] >= 1
        assert user in [s.user_id for s in service.list_sessions(slug=slug)[0]]
