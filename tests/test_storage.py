"""Rules 1 and 2: how a session is stored, and what an operator sees with redis-cli."""

import zlib

import pytest
from django.core.cache import caches

from stealth_sessions.service import SessionService, get_session_service
from stealth_sessions.values import Session
from tests.layout import key as layout_key

KINDS = {"": "session", ":previous": "previous", ":back_to": "back_to", ":data": "data"}


def key(user_id: str, suffix: str = "") -> str:
    return layout_key(user_id, KINDS[suffix])


def test_a_new_user_has_no_session(service):
    assert service.get("new-user") is None
    assert service.peek("new-user") is None


def test_the_current_slug_is_a_plain_string_at_a_key_named_after_the_user(service, redis_client):
    service.step_to("+15551234567", slug="hello->say_hello")
    found = list(redis_client.scan_iter(match="*+15551234567*"))
    assert key("+15551234567").encode() in found
    assert redis_client.get(key("+15551234567")) == b"hello->say_hello"


def test_previous_and_back_to_are_plain_strings_at_their_own_keys(service, redis_client):
    service.step_to("u", slug="hello->say_hello")
    service.step_to("u", slug="hello->ask_name")
    service.set_back_to("u", slug="goodbye->say_bye")
    assert redis_client.get(key("u", ":previous")) == b"hello->say_hello"
    assert redis_client.get(key("u", ":back_to")) == b"goodbye->say_bye"


def test_after_the_first_transition_previous_is_none(service):
    session = service.step_to("u", slug="hello->say_hello")
    assert session == Session(
        user_id="u",
        slug="hello->say_hello",
        flow="hello",
        state="say_hello",
        previous=None,
        back_to=None,
        version=1,
        ttl=None,
    )
    assert service.get("u") == session


def test_a_users_keys_are_three_slugs_and_the_apps_data(service, redis_client):
    """What an operator finds with ``redis-cli --scan --pattern '*<id>*'``: the three slugs
    and the app's own data key (version, last activity, history)."""
    service.step_to("u", slug="hello->say_hello")
    service.step_to("u", slug="hello->ask_name")
    service.set_back_to("u", slug="goodbye->say_bye")
    found = sorted(k.decode() for k in redis_client.scan_iter(match="*:u"))
    assert found == sorted(key("u", s) for s in KINDS)


def test_no_user_id_names_another_users_keys(service, redis_client):
    service.step_to("x", slug="hello->say_hello")
    for other in ("previous:x", "data:x", "x:previous", "{x}", "session:x"):
        service.step_to(other, slug="goodbye->say_bye")
    assert service.peek("x").slug == "hello->say_hello"
    assert service.peek("x").previous is None
    assert [t.target for t in service.history("x")] == ["hello->say_hello"]


def test_a_slug_written_by_hand_is_picked_up_by_get_and_indexed(service, redis_client):
    service.step_to("u", slug="hello->say_hello")
    redis_client.set(key("u"), "goodbye->say_bye")
    session = service.get("u")
    assert session.slug == "goodbye->say_bye"
    assert session.flow == "goodbye"
    assert session.version == 2  # a change made by hand counts as a write
    assert service.count_by_state() == {"goodbye->say_bye": 1}
    assert [s.user_id for s in service.list_sessions(slug="goodbye->say_bye")[0]] == ["u"]
    assert service.list_sessions(slug="hello->say_hello") == ([], None)


def test_a_session_created_by_hand_is_picked_up(service, redis_client):
    redis_client.set(key("manual"), "hello->ask_name")
    session = service.get("manual")
    assert (session.slug, session.version, session.previous) == ("hello->ask_name", 1, None)
    assert service.count_by_state() == {"hello->ask_name": 1}


@pytest.mark.parametrize("ttl", [None, 600])
@pytest.mark.parametrize("then", ["step_to", "reset"])
def test_a_session_whose_data_was_deleted_by_hand_is_indexed_afresh(
    settings, redis_client, then, ttl
):
    """Its old index entry is left behind (only reset removes a user cleanly), but never
    listed: rows are checked against the session."""
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": ttl}
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    redis_client.delete(key("u", ":data"))
    if then == "step_to":
        assert service.step_to("u", slug="goodbye->say_bye").version == 1
        assert service.count_by_state()["goodbye->say_bye"] == 1
        assert [s.user_id for s in service.list_sessions(user_id_prefix="u")[0]] == ["u"]
        assert [s.user_id for s in service.list_sessions()[0]] == ["u"]
        assert service.list_sessions(slug="hello->say_hello") == ([], None)
    else:
        assert service.reset("u") is True
        assert service.get("u") is None
        assert service.list_sessions(user_id_prefix="u") == ([], None)
        assert list(redis_client.scan_iter(match="*:u")) == []


@pytest.mark.parametrize("value", ["", "garbage", "1|x|y", "09|zz|3|abc", "0|" + "f" * 11 + "|"])
def test_a_malformed_data_value_written_by_hand_loses_no_session(service, redis_client, value):
    service.step_to("u", slug="hello->say_hello")
    redis_client.set(key("u", ":data"), value)
    assert service.get("u").slug == "hello->say_hello"
    session = service.step_to("u", slug="hello->ask_name")
    assert (session.slug, session.previous) == ("hello->ask_name", "hello->say_hello")
    assert service.history("u")[0].target == "hello->ask_name"


def test_a_session_deleted_by_hand_leaves_the_indexes_on_get(service, redis_client):
    service.step_to("u", slug="hello->say_hello")
    redis_client.delete(key("u"))
    assert service.get("u") is None
    assert service.count_by_state() == {}


@pytest.mark.parametrize("stored", ["garbage", "hello->", "hello->nope", "nope->x", "é->x"])
def test_a_malformed_or_unknown_stored_slug_is_returned_as_stored(service, redis_client, stored):
    redis_client.set(key("u"), stored)
    session = service.get("u")
    assert (session.slug, session.flow, session.state) == (stored, None, None)


def test_an_operator_can_fix_a_bad_slug_by_stepping_the_user(service, redis_client):
    redis_client.set(key("u"), "garbage")
    service.get("u")
    session = service.step_to("u", slug="hello->say_hello")
    assert session.previous == "garbage"
    assert service.count_by_state() == {"hello->say_hello": 1}


def test_peek_reads_without_touching_indexes(service, redis_client):
    redis_client.set(key("u"), "hello->ask_name")
    assert service.peek("u").version == 0
    assert service.count_by_state() == {}


def test_keys_follow_the_caches_key_prefix_and_the_namespace(settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "KEY_NAMESPACE": "bots"}
    from stealth_sessions.service import get_session_service

    get_session_service().step_to("u", slug="hello->say_hello")
    prefix = caches["default"].key_prefix
    shard = zlib.crc32(b"u") % 64
    assert redis_client.get(f"{prefix}:1:bots:{{{shard:02d}}}:session:u") == b"hello->say_hello"


def test_reset_removes_session_previous_back_to_and_history(service, redis_client, record):
    from stealth_sessions.signals import session_reset

    resets = record(session_reset)
    service.step_to("u", slug="hello->say_hello")
    service.step_to("u", slug="hello->ask_name")
    service.set_back_to("u", slug="hello->say_hello")
    before = service.peek("u")
    assert service.reset("u") is True
    assert list(redis_client.scan_iter(match="*:u")) == []
    assert service.get("u") is None and service.history("u") == []
    assert resets.calls == [{"sender": SessionService, "user_id": "u", "session": before}]
    assert service.reset("u") is False
    assert len(resets.calls) == 1


def test_version_is_back_to_zero_after_a_reset(service):
    service.step_to("u", slug="hello->say_hello")
    service.reset("u")
    assert service.step_to("u", slug="hello->say_hello", expected_version=0).version == 1


@pytest.mark.parametrize("junk", [b"junk", b"hello->say_hello|zz|x", b"hello->say_hello|"])
def test_an_index_member_added_by_hand_is_ignored_and_purged(settings, redis_client, junk):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 60}
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    shard = service.store.keys.user("u").shard
    redis_client.zadd(shard.sessions, {junk: 0})
    assert [s.user_id for s in service.list_sessions()[0]] == ["u"]
    assert [s.user_id for s in service.list_sessions(user_id_prefix="u")[0]] == ["u"]
    assert service.count_by_state()["hello->say_hello"] >= 1
    service.purge_expired()
    assert service.peek("u").slug == "hello->say_hello"
