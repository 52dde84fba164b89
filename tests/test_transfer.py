"""Export, import and import from Stealth (stealth_sessions.transfer, through the command)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from botproject.redis_server import RedisServer
from stealth_sessions import signals
from stealth_sessions.service import get_session_service, origin


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("stealth_sessions", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def export(tmp_path: Path, name: str, *args: str) -> str:
    path = tmp_path / name
    run("export", "-o", str(path), *args)
    return path.read_text()


def populate(service) -> None:
    service.step_to("u1", slug="hello->say_hello")
    service.step_to("u1", slug="hello->ask_name")
    service.set_back_to("u1", slug="goodbye->say_bye")
    with origin("api"):
        service.update_session_to("u2", slug="goodbye->say_bye")
    service.step_to("user-ünïcode|x", slug="follow_up->nudge")
    for _ in range(3):
        service.step_to("u3", slug="hello->say_hello")
        service.step_to("u3", slug="hello->get_name")


def wipe(service) -> None:
    call_command("stealth_sessions", "reset", "--yes", "--no-progress", *all_users(service),
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    assert service.count_by_state() == {}


def all_users(service) -> list[str]:
    page, _ = service.browse(limit=1000)
    return [listed.session.user_id for listed in page]


def without_expiry(text: str) -> list[dict]:
    rows = [json.loads(line) for line in text.splitlines()]
    for row in rows:
        row.pop("expires_in_ms")
    return rows


def test_export_writes_one_user_a_line_with_their_whole_record(service, tmp_path):
    populate(service)
    rows = [json.loads(line) for line in export(tmp_path, "a.jsonl").splitlines()]
    assert len(rows) == 4
    u1 = next(row for row in rows if row["user_id"] == "u1")
    assert list(u1) == [
        "user_id", "slug", "previous", "back_to", "version", "last_activity_ms",
        "expires_in_ms", "history", "steps",
    ]  # fmt: skip
    assert u1["slug"] == "hello->ask_name"
    assert u1["previous"] == "hello->say_hello"
    assert u1["back_to"] == "goodbye->say_bye"
    assert u1["version"] == service.peek("u1").version
    assert [(e["source"], e["target"]) for e in u1["history"]] == [
        ("hello->say_hello", "hello->ask_name"),
        (None, "hello->say_hello"),
    ]


def test_export_then_wipe_then_import_then_export_gives_the_same_bytes(service, tmp_path):
    populate(service)
    service.step_to_in("u1", timedelta(hours=1), slug="follow_up->nudge", if_unchanged=True)
    first = export(tmp_path, "first.jsonl")
    wipe(service)
    out, _ = run("import", str(tmp_path / "first.jsonl"))
    assert "Imported 4 user(s)" in out
    assert export(tmp_path, "second.jsonl") == first
    assert [s.target for s in service.scheduled_steps("u1")] == ["follow_up->nudge"]


def test_the_round_trip_keeps_the_bytes_with_an_expiry_but_for_the_remaining_expiry(tmp_path):
    with override_settings(STEALTH_SESSIONS={**settings.STEALTH_SESSIONS, "SESSION_TTL": 3600}):
        service = get_session_service()
        populate(service)
        first = export(tmp_path, "first.jsonl")
        assert all(
            0 < row["expires_in_ms"] <= 3_600_000 for row in map(json.loads, first.splitlines())
        )
        wipe(service)
        run("import", str(tmp_path / "first.jsonl"))
        assert without_expiry(export(tmp_path, "second.jsonl")) == without_expiry(first)
        assert 0 < service.get("u1").ttl <= 3600


def test_importing_twice_changes_nothing(service, tmp_path):
    populate(service)
    first = export(tmp_path, "first.jsonl")
    out, _ = run("import", str(tmp_path / "first.jsonl"))
    assert "Imported 0 user(s); skipped 4" in out
    assert export(tmp_path, "second.jsonl") == first


def test_import_skips_users_present_unless_replace(service, tmp_path):
    service.step_to("u1", slug="hello->say_hello")
    path = tmp_path / "a.jsonl"
    run("export", "-o", str(path))
    service.step_to("u1", slug="goodbye->say_bye")
    run("import", str(path))
    assert service.peek("u1").slug == "goodbye->say_bye"
    out, _ = run("import", str(path), "--replace")
    assert "Imported 1 user(s)" in out
    assert service.peek("u1").slug == "hello->say_hello"
    assert service.count_by_state() == {"hello->say_hello": 1}


def test_import_sends_no_signal_and_runs_no_action(service, tmp_path, record, action):
    populate(service)
    path = tmp_path / "a.jsonl"
    run("export", "-o", str(path))
    wipe(service)
    posts = record(signals.post_transition)
    ran = action("hello->ask_name", lambda *a, **k: pytest.fail("the action ran"))
    assert ran
    run("import", str(path))
    assert posts.calls == []


def test_export_of_a_slug_or_flow_only(service, tmp_path):
    populate(service)
    rows = [json.loads(x) for x in export(tmp_path, "h.jsonl", "--flow", "hello").splitlines()]
    assert sorted(row["user_id"] for row in rows) == ["u1", "u3"]
    rows = [
        json.loads(x)
        for x in export(tmp_path, "s.jsonl", "--slug", "goodbye->say_bye").splitlines()
    ]
    assert [row["user_id"] for row in rows] == ["u2"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ('{"user_id": "u9", "slug": "nope", "version": 1}', "slug"),
        ('{"user_id": "has space", "slug": "hello->say_hello", "version": 1}', "whitespace"),
        ('{"user_id": "u9", "slug": "hello->say_hello", "version": -1}', "'version'"),
        ('{"user_id": "u9", "slug": "hello->say_hello", "version": 1, "history": 3}', "history"),
    ],
)
def test_a_malformed_line_is_named_and_nothing_is_written(service, tmp_path, line, message):
    good = '{"user_id": "u8", "slug": "hello->say_hello", "version": 1}'
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n\n" + line + "\n")
    with pytest.raises(CommandError, match=rf"line 3: .*{message}"):
        run("import", str(path))
    assert service.peek("u8") is None


def test_a_missing_import_file_is_one_line(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run("import", str(tmp_path / "nope.jsonl"))


# -- import from Stealth -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stealth_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stealth(stealth_server) -> Iterator[redis.Redis]:
    """A Stealth bot's Redis, in Stealth's exact layout."""
    client = redis.Redis.from_url(stealth_server.url)
    client.flushall()
    client.set("+15551230001", "hello->ask_name")
    client.set("+15551230001-previous", "hello->say_hello")
    client.set("+15551230001-back_to", "")
    client.set("+15551230002", "goodbye->say_bye", px=90_000)
    client.set("+15551230002-previous", "", px=90_000)
    client.set("+15551230002-back_to", "hello->say_hello", px=90_000)
    client.set("+15551230003", "follow_up->nudge")  # no -previous/-back_to keys at all
    client.set("settings:greeting", "Hello!")  # not a session: left alone
    client.hset("some-hash", "a", "1")  # another type: left alone
    try:
        yield client
    finally:
        client.flushall()
        client.close()


def test_import_stealth_imports_each_users_place(service, stealth, stealth_server):
    out, _ = run("import-stealth", "--from", stealth_server.url)
    assert "Imported 3 user(s); 0 already had a session here" in out
    assert "2 key(s) left alone" in out
    one = service.peek("+15551230001")
    assert (one.slug, one.previous, one.back_to, one.version) == (
        "hello->ask_name", "hello->say_hello", None, 1,
    )  # fmt: skip
    two = service.peek("+15551230002")
    assert (two.slug, two.previous, two.back_to) == ("goodbye->say_bye", None, "hello->say_hello")
    [entry] = service.history("+15551230001")
    assert (entry.method, entry.origin, entry.source, entry.target) == (
        "import", "cli", "hello->say_hello", "hello->ask_name",
    )  # fmt: skip
    assert stealth.get("settings:greeting") == b"Hello!"
    assert stealth.exists("+15551230001")


def test_import_stealth_run_twice_imports_nothing_new(service, stealth, stealth_server):
    run("import-stealth", "--from", stealth_server.url)
    service.step_to("+15551230001", slug="hello->get_name")
    out, _ = run("import-stealth", "--from", stealth_server.url)
    assert "Imported 0 user(s); 3 already had a session here" in out
    assert service.peek("+15551230001").slug == "hello->get_name"


def test_import_stealth_keeps_the_source_expiry_with_a_session_ttl(stealth, stealth_server):
    with override_settings(STEALTH_SESSIONS={**settings.STEALTH_SESSIONS, "SESSION_TTL": 3600}):
        service = get_session_service()
        run("import-stealth", "--from", stealth_server.url)
        assert 80 <= service.peek("+15551230002").ttl <= 90
        assert service.peek("+15551230001").ttl == 3600


def test_import_stealth_dry_run_writes_nothing(service, stealth, stealth_server):
    out, _ = run("import-stealth", "--from", stealth_server.url, "--dry-run")
    assert "Would import 3 user(s)" in out
    assert service.count_by_state() == {}


def test_import_stealth_delete_source_deletes_only_the_imported_users(
    service, stealth, stealth_server
):
    service.step_to("+15551230003", slug="hello->say_hello")  # already here: not imported
    out, _ = run("import-stealth", "--from", stealth_server.url, "--delete-source")
    assert "deleted 2 user(s) from the source" in out
    assert not stealth.exists("+15551230001", "+15551230001-previous", "+15551230002-back_to")
    assert stealth.exists("+15551230003")
    assert stealth.get("settings:greeting") == b"Hello!"


def test_import_stealth_from_an_unreachable_redis_is_one_line():
    with pytest.raises(CommandError, match="Redis is unavailable"):
        run("import-stealth", "--from", "redis://127.0.0.1:1/0")
