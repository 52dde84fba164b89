"""Rule 7: expiry is a setting; writes set it and get slides it, on all of a user's slug keys
together. The app's own data key carries no expiry: it goes with the user's index entry when
the purge finds the session expired."""

import time

import pytest
import time_machine

from stealth_sessions.service import get_session_service


def slug_keys(service, user_id):
    k = service.store.keys.user(user_id)
    return [k.session, k.previous, k.back_to]


def pttls(service, redis_client, user_id="u"):
    return [redis_client.pttl(key) for key in slug_keys(service, user_id)]


def data_pttl(service, redis_client, user_id="u"):
    return redis_client.pttl(service.store.keys.user(user_id).data)


@pytest.fixture
def expiring(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 600}
    return get_session_service()


def full_session(service, user_id="u"):
    service.step_to(user_id, slug="hello->say_hello")
    service.step_to(user_id, slug="hello->ask_name")
    service.set_back_to(user_id, slug="hello->say_hello")


def full(ttls):
    return all(595_000 < t <= 600_000 for t in ttls)


def test_by_default_nothing_expires(service, redis_client):
    full_session(service)
    assert pttls(service, redis_client) == [-1] * 3
    assert data_pttl(service, redis_client) == -1
    assert service.get("u").ttl is None


def test_every_write_sets_the_expiry_on_all_slug_keys_together(expiring, redis_client):
    full_session(expiring)
    assert full(pttls(expiring, redis_client))
    assert data_pttl(expiring, redis_client) == -1  # purged with the user, not expired
    assert expiring.get("u").ttl == 600


def shorten(service, redis_client, user_id="u", ms=5_000):
    for key in slug_keys(service, user_id):
        redis_client.pexpire(key, ms)


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
    shorten(expiring, redis_client)
    write(expiring)
    assert full(pttls(expiring, redis_client))


def test_a_first_transition_gives_its_keys_the_expiry(expiring, redis_client):
    expiring.step_to("new", slug="hello->say_hello")
    session, previous, back_to = pttls(expiring, redis_client, "new")
    assert previous == back_to == -2  # none yet
    assert 595_000 < session <= 600_000


def test_get_slides_the_expiry_of_all_keys_together(expiring, redis_client):
    full_session(expiring)
    shorten(expiring, redis_client)
    with time_machine.travel(time.time() + 10, tick=True):  # past slide_every (6 s here)
        assert expiring.get("u").ttl == 600
    assert full(pttls(expiring, redis_client))


def test_a_get_right_after_a_write_reads_without_writing(expiring, redis_client):
    full_session(expiring)
    shorten(expiring, redis_client)
    assert expiring.get("u").ttl == 600  # read only: the write just set the expiry
    assert all(t <= 5_000 for t in pttls(expiring, redis_client))


def test_the_ttl_counts_down_from_the_last_activity(expiring):
    full_session(expiring)
    with time_machine.travel(time.time() + 100.5, tick=False):
        assert expiring.peek("u").ttl == 500


def test_peek_does_not_slide(expiring, redis_client):
    full_session(expiring)
    shorten(expiring, redis_client)
    with time_machine.travel(time.time() + 10, tick=True):
        assert expiring.peek("u").ttl == 590
    assert all(t <= 5_000 for t in pttls(expiring, redis_client))


def test_a_write_with_no_expiry_clears_any_left_on_the_keys(expiring, settings, redis_client):
    full_session(expiring)
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    get_session_service().step_to("u", slug="hello->get_name")
    assert pttls(expiring, redis_client) == [-1] * 3
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 600}
    get_session_service().get("u")
    assert full(pttls(expiring, redis_client))
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    get_session_service().set_back_to("u", slug="hello->ask_name")
    assert pttls(expiring, redis_client) == [-1] * 3


def test_a_get_with_no_expiry_clears_any_left_on_the_keys(expiring, settings, redis_client):
    full_session(expiring)
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": None}
    assert get_session_service().get("u").ttl is None
    assert pttls(expiring, redis_client) == [-1] * 3


def test_an_expired_session_is_gone_with_its_previous_and_excluded_everywhere(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    full_session(service, "short")
    service.step_to("stays", slug="hello->ask_name")
    time.sleep(0.6)
    assert service.get("stays") is not None  # slides: "stays" outlives "short"
    time.sleep(0.6)
    assert service.count_by_state() == {"hello->ask_name": 1}
    assert [s.user_id for s in service.list_sessions()[0]] == ["stays"]
    assert [s.user_id for s in service.list_sessions(slug="hello->ask_name")[0]] == ["stays"]
    assert service.get("short") is None
    assert service.history("short") == []
    session = service.step_to("short", slug="hello->say_hello")
    assert (session.previous, session.back_to, session.version) == (None, None, 1)


def test_the_purge_drops_expired_users_and_their_data_only(settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    for user in ("a", "b", "c"):
        full_session(service, user)
    time.sleep(0.6)
    service.get("c")  # slid: alive for another second
    time.sleep(0.6)
    assert service.purge_expired() == 2
    assert service.purge_expired() == 0
    for user in ("a", "b"):
        assert redis_client.exists(service.store.keys.user(user).data) == 0
    assert redis_client.exists(service.store.keys.user("c").data) == 1
    shard_members = [
        m for s in service.store.keys.shards for m in redis_client.zrange(s.sessions, 0, -1)
    ]
    assert [m.split(b"|")[-1] for m in shard_members] == [b"c"]
    assert service.count_by_state() == {"hello->ask_name": 1}


def test_keys_persisted_by_hand_stay_counted_and_are_kept_by_the_purge(settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    service.step_to("kept", slug="hello->say_hello")
    for key in slug_keys(service, "kept"):
        redis_client.persist(key)
    time.sleep(1.1)
    assert service.purge_expired() == 0  # alive: looked at again one TTL later
    assert service.count_by_state() == {"hello->say_hello": 1}
    assert service.get("kept") is not None
    with time_machine.travel(time.time() + 10, tick=True):
        service.get("kept")  # a slide gives the keys an expiry again
    assert 0 < redis_client.pttl(service.store.keys.user("kept").session) <= 1000


def test_a_lowered_ttl_takes_effect(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 3600}
    get_session_service().step_to("u", slug="hello->say_hello")
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    assert service.count_by_state() == {"hello->say_hello": 1}
    time.sleep(1.2)
    assert service.count_by_state() == {}  # counted by the TTL in force
    assert service.list_sessions() == ([], None)


def test_a_user_back_after_expiry_leaves_no_trace_in_the_old_state(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    service.step_to("back", slug="hello->say_hello")
    time.sleep(1.1)  # expired, and not purged yet
    session = service.step_to("back", slug="goodbye->say_bye")
    assert (session.previous, session.version) == (None, 1)
    assert [(t.source, t.target) for t in service.history("back")] == [(None, "goodbye->say_bye")]
    assert service.count_by_state() == {"goodbye->say_bye": 1}
    time.sleep(1.1)
    assert service.count_by_state() == {}


def test_the_purge_command_and_job_purge_expired_users(settings):
    from io import StringIO

    from django.core.management import call_command

    from stealth_sessions.scheduling.jobs import purge

    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1}
    service = get_session_service()
    for user in ("a", "b", "c"):
        service.step_to(user, slug="hello->say_hello")
    time.sleep(1.1)
    out = StringIO()
    call_command("stealth_sessions_purge", stdout=out)
    assert out.getvalue() == "Purged 3 expired session(s).\n"
    service.step_to("d", slug="hello->say_hello")
    assert purge() == 0
    time.sleep(1.1)
    assert purge() == 1
