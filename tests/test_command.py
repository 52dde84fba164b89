"""``manage.py stealth_sessions <subcommand>``: the operators' command."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from stealth_sessions.service import SessionService, get_session_service


def run(*args: str, progress: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra = () if progress else ("--no-progress",) if walks(args[0]) else ()
    call_command("stealth_sessions", *args, *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def walks(subcommand: str) -> bool:
    return subcommand not in ("show", "stats", "purge", "sweep")


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """A real ``manage.py``-style run, for exit codes (the test Redis comes by environment)."""
    return subprocess.run(
        [sys.executable, "-m", "django", "stealth_sessions", "--settings", "tests.settings", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_show_prints_the_whole_session(service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to("u1", slug="hello->ask_name")
    service.set_back_to("u1", slug="goodbye->say_bye")
    service.step_to_in("u1", timedelta(hours=1), slug="follow_up->nudge")
    out, _ = run("show", "u1")
    assert "session:    hello->ask_name" in out
    assert "previous:   hello->say_hello" in out
    assert "back-to:    goodbye->say_bye" in out
    assert "expires in: never" in out
    assert f"version:    {service.peek('u1').version}" in out
    assert "lock:       free" in out
    assert "pending steps: 1" in out and "-> follow_up->nudge" in out
    assert "history (2, newest first):" in out
    assert "hello->say_hello -> hello->ask_name" in out


def test_show_says_who_holds_the_lock_and_each_steps_data(service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to_in("u1", timedelta(hours=1), slug="follow_up->nudge", data={"page": "p7"})
    with service.lock("u1"):
        out, _ = run("show", "u1")
    assert "lock:       held by " in out and ":MainThread until " in out
    assert 'data {"page": "p7"}' in out


def test_show_of_an_unknown_user_or_a_bad_id_is_one_line(service):
    with pytest.raises(CommandError, match="'nobody' has no session"):
        run("show", "nobody")
    with pytest.raises(CommandError, match="whitespace"):
        run("show", "a b")


def test_stats_counts_users_per_flow_and_state_and_steps(service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to("u2", slug="hello->say_hello")
    service.step_to("u3", slug="goodbye->say_bye")
    service.step_to_in("u1", timedelta(hours=1), slug="follow_up->nudge")
    out, _ = run("stats", "--json")
    assert json.loads(out) == {
        "total_users": 3,
        "flows": {"goodbye": {"say_bye": 1}, "hello": {"say_hello": 2}},
        "pending_steps": 1,
        "overdue_steps": 0,
    }
    out, _ = run("stats")
    assert "hello: 2\n  say_hello: 2\n" in out and "total users: 3" in out


def test_reset_resets_the_users_given_and_counts_those_skipped(service):
    service.step_to("u1", slug="hello->say_hello")
    out, _ = run("reset", "u1", "u2", "--yes")
    assert out == "Reset 1 user(s); skipped 1 (no session).\n"
    assert service.peek("u1") is None


def test_destructive_subcommands_ask_for_confirmation(service):
    service.step_to("u1", slug="hello->say_hello")
    with pytest.raises(CommandError, match="pass --yes"):
        run("reset-state", "hello->say_hello")
    assert service.peek("u1") is not None


def test_reset_state_resets_everyone_at_the_slug(service):
    for user_id in ("u1", "u2"):
        service.step_to(user_id, slug="hello->say_hello")
    service.step_to("u3", slug="goodbye->say_bye")
    out, _ = run("reset-state", "hello->say_hello", "--yes")
    assert out == "Reset 2 user(s) at hello->say_hello; skipped 0 (moved meanwhile).\n"
    assert service.count_by_state() == {"goodbye->say_bye": 1}


def test_move_state_moves_everyone_with_history_origin_cli(service, action):
    ran = []
    action("goodbye->say_bye", lambda *args, **kwargs: ran.append(1))
    for user_id in ("u1", "u2"):
        service.update_session_to(user_id, slug="hello->say_hello")
    out, _ = run("move-state", "hello->say_hello", "goodbye->say_bye", "--yes")
    assert "Moved 2 user(s) from hello->say_hello to goodbye->say_bye" in out
    assert ran == []
    entry = service.history("u1")[0]
    assert (entry.method, entry.origin) == ("update_session_to", "cli")
    run("move-state", "goodbye->say_bye", "hello->get_name", "--run-action", "--yes")
    assert service.history("u1")[0].method == "step_to"


def test_check_finds_unknown_and_redirecting_states_and_steps_to_gone_states(service):
    service.update_session_to("u1", slug="hello->say_hello")
    service.step_to_in("u1", timedelta(hours=1), slug="hello->get_name")
    with override_settings(
        STEALTH_SESSIONS={**settings.STEALTH_SESSIONS, "FLOW_MAP": None}
    ):  # anything goes: a deploy ago
        before = get_session_service()
        before.update_session_to("u2", slug="hello->old_name")
        before.update_session_to("u3", slug="gone->away")
        before.update_session_to("u4", slug="hello->vanished")
        before.step_to_in("u1", timedelta(hours=1), slug="gone->away")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"check found 4 problem\(s\)"):
        call_command("stealth_sessions", "check", "--no-progress", stdout=out)
    text = out.getvalue()
    assert (
        "1 user(s) at gone->away, which is not in the flow map; fix: manage.py "
        "stealth_sessions move-state gone->away TARGET" in text
    )
    assert "move-state hello->vanished hello->say_hello" in text
    assert "1 user(s) at hello->old_name, which redirects to goodbye->say_bye" in text
    assert "of user u1 targets gone->away, which is not in the flow map" in text
    assert "targets hello->get_name" not in text


def test_check_passes_on_a_clean_deployment(service):
    service.step_to("u1", slug="hello->say_hello")
    out, _ = run("check")
    assert out == "No problems found.\n"


def test_purge_and_sweep_call_the_service(service):
    out, _ = run("purge")
    assert out == "Purged 0 expired session(s).\n"
    out, _ = run("sweep", "--grace", "60")
    assert out == "Handed 0 overdue scheduled step(s) to the engine.\n"


def test_progress_lines_when_not_a_terminal(service, monkeypatch):
    from stealth_sessions.management.commands import stealth_sessions as command

    monkeypatch.setattr(command, "PLAIN_EVERY", 2)
    for n in range(5):
        service.step_to(f"u{n}", slug="hello->say_hello")
    _, err = run("reset-state", "hello->say_hello", "--yes", progress=True)
    assert "reset-state: 2 of 5 users\nreset-state: 4 of 5 users\n" in err


def test_ctrl_c_stops_between_users_and_says_how_far(service, monkeypatch):
    for n in range(5):
        service.step_to(f"u{n}", slug="hello->say_hello")
    reset = SessionService.reset

    def reset_then_interrupt(self, user_id, **kwargs):
        done = reset(self, user_id, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return done

    monkeypatch.setattr(SessionService, "reset", reset_then_interrupt)
    with pytest.raises(CommandError, match=r"Interrupted after 1 of 5 users \(1 changed\)") as e:
        run("reset-state", "hello->say_hello", "--yes")
    assert e.value.returncode == 130
    assert service.count_by_state() == {"hello->say_hello": 4}


def test_a_malformed_slug_is_one_line():
    with pytest.raises(CommandError, match="slug"):
        run("reset-state", "not a slug", "--yes")


@pytest.mark.slow
def test_exit_codes_of_a_real_run(service):
    service.step_to("u1", slug="hello->say_hello")
    done = manage("show", "u1")
    assert done.returncode == 0 and "hello->say_hello" in done.stdout
    done = manage("show", "nobody")
    assert done.returncode == 1
    assert done.stderr.strip() == "CommandError: User 'nobody' has no session"
    with override_settings(STEALTH_SESSIONS={**settings.STEALTH_SESSIONS, "FLOW_MAP": None}):
        get_session_service().update_session_to("u2", slug="gone->away")
    done = manage("check", "--no-progress")
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_an_unreachable_redis_is_one_line_and_a_non_zero_exit(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for name in ("STEALTH_TEST_REDIS_URL", "STEALTH_TEST_REDIS_CLUSTER_URLS"):
        env[name] = "redis://127.0.0.1:1/0"
    done = subprocess.run(
        [sys.executable, "-m", "django", "stealth_sessions", "--settings", "tests.settings",
         "stats"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("CommandError: Redis is unavailable")
    assert "Traceback" not in done.stderr
