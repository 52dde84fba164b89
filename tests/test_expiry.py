"""Rule 7: expiry is a setting; writes set it and get slides it, on all of a user's keys."""

import time

import pytest
from django.core.cache import caches

from stealth_sessions.service import get_session_service

SUFFIXES = ["", ":previous", ":back_to", ":history", ":meta"]


def pttls(redis_client, user_id):
    return [
        redis_client.pttl(caches["default"].make_key(f"stealth:{{{user_id}}}{s}")) for s in SUFFIXES
    ]


@pytest.fixture
def expiring(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 600}
    return get_session_service()


def full_session(service, user_id="u"):
    service.step_to(user_id, slug="hello->say_hello")
    service.step_to(user_id, slug="hello->ask_name")
    service.set_back_to(user_id, slug="hello->say_hello")


def test_by_default_nothing_expires(service, redis_client):
    full_session(service)
    assert pttls(redis_client, "u") == [-1] * 5
    assert service.get("u").ttl is None


def test_every_write_sets_the_expiry_on_all_keys_together(expiring, redis_client):
    full_session(expiring)
    assert all(595_000 < t <= 600_000 for t in pttls(redis_client, "u"))
    assert expiring.get("u").ttl == 600


def shorten(redis_client, user_id="u", ms=5_000):
    for suffix in SUFFIXES:
        redis_client.pexpire(caches["default"].make_key(f"stealth:{{{user_id}}}{suffix}"), ms)


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.step_to("u", slug="goodbye->say_bye"),
        lambda s: s.update_session_to("u", slug="goodbye->say_bye"),
        lambda s: s.step_to("u", slug="hello->ask_name"),  # the current state: a slide
        lambda s: s.set_back_to("u", slug="goodbye->say_bye"),
        lambda s: s.step_back("u"),
    ],
    ids=["step_to", "update_session_to", "step_to_current", "set_back_to", "step_back"],
)
def test_each_kind_of_write_gives_every_key_the_full_expiry(expiring, redis_client, write):
    full_session(expiring)
    shorten(redis_client)
    write(expiring)
    assert all(595_000 < t <= 600_000 for t in pttls(redis_client, "u"))


def test_a_first_transition_gives_its_keys_the_expiry(expiring, redis_client):
    expiring.step_to("new", slug="hello->say_hello")
    keys = {
        suffix: redis_client.pttl(caches["default"].make_key(f"stealth:{{new}}{suffix}"))
        for suffix in SUFFIXES
    }
    assert keys[":previous"] == keys[":back_to"] == -2  # none yet
    assert all(595_000 < keys[s] <= 600_000 for s in ["", ":history", ":meta"])


def test_get_slides_the_expiry_of_all_keys_together(expiring, redis_client):
    full_session(expiring)
    shorten(redis_client)
    assert expiring.get("u").ttl == 600
    assert all(595_000 < t <= 600_000 for t in pttls(redis_client, "u"))


def test_peek_does_not_slide(expiring, redis_client):
    full_session(expiring)
    redis_client.pexpire(caches["default"].make_key("stealth:{u}"), 5_000)
    assert expiring.peek("u").ttl == 5


def test_a_write_with_no_expiry_clears_any_left_on_the_keys(expiring, settings, redis_client):
    full_session(expiring)
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    get_session_service().step_to("u", slug="hello->get_name")
    assert pttls(redis_client, "u") == [-1] * 5
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 600}
    get_session_service().get("u")
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    get_session_service().set_back_to("u", slug="hello->ask_name")
    assert pttls(redis_client, "u") == [-1] * 5


def test_an_expired_session_is_gone_with_its_previous_and_excluded_everywhere(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    full_session(service, "short")
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    service = get_session_service()
    service.step_to("stays", slug="hello->ask_name")
    time.sleep(1.1)
    assert service.count_by_state() == {"hello->ask_name": 1}
    assert [s.user_id for s in service.list_sessions()[0]] == ["stays"]
    assert [s.user_id for s in service.list_sessions(slug="hello->ask_name")[0]] == ["stays"]
    assert service.get("short") is None
    assert service.history("short") == []
    session = service.step_to("short", slug="hello->say_hello")
    assert (session.previous, session.back_to, session.version) == (None, None, 1)


def test_a_slid_session_is_counted_until_it_really_expires(settings):
    # A slide does not rewrite the expiry index (its score stays a lower bound): the purge
    # finds the user alive when the first expiry comes due, and keeps counting them.
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    service.step_to("slid", slug="hello->say_hello")
    time.sleep(0.6)
    assert service.get("slid") is not None  # slides: now expires ~1.6 s after the write
    time.sleep(0.6)
    assert service.count_by_state() == {"hello->say_hello": 1}
    assert [s.user_id for s in service.list_sessions()[0]] == ["slid"]
    time.sleep(1.1)
    assert service.count_by_state() == {}
    assert service.list_sessions() == ([], None)


def test_keys_persisted_by_hand_are_indexed_again_when_a_read_slides_them(settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    service.step_to("kept", slug="hello->say_hello")
    for key in service.store.keys.user_keys("kept"):
        redis_client.persist(key)
    time.sleep(1.1)
    assert service.count_by_state() == {"hello->say_hello": 1}  # persisted: alive
    assert service.get("kept") is not None  # the slide gives the keys an expiry again
    time.sleep(1.1)
    redis_client.zadd(service.store.keys.index("expiry"), {"kept": 0})  # "look again" is due
    assert service.count_by_state() == {}


def test_a_lowered_ttl_takes_effect_in_the_counts(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 3600}
    get_session_service().step_to("u", slug="hello->say_hello")
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    assert service.get("u") is not None  # slides to the new, shorter expiry
    time.sleep(1.2)
    assert service.peek("u") is None
    assert service.count_by_state() == {}


def test_a_user_back_after_expiry_leaves_no_trace_in_the_old_state(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    service.step_to("back", slug="hello->say_hello")
    time.sleep(1.1)  # expired, and no count or listing has purged the indexes yet
    service.step_to("back", slug="goodbye->say_bye")
    assert service.count_by_state() == {"goodbye->say_bye": 1}
    time.sleep(1.1)
    assert service.count_by_state() == {}
