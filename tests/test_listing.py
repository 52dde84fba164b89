"""count_by_state, browse and list_sessions: exact, newest activity first (by user id with a
prefix), paginated by cursor."""

import time
import zlib
from datetime import UTC, datetime

import pytest
import time_machine

from stealth_sessions import browsing
from stealth_sessions.service import get_session_service

SLUGS = ["hello->say_hello", "hello->ask_name", "goodbye->say_bye"]


@pytest.fixture
def population(service):
    for i in range(30):
        service.step_to(f"user-{i:02d}", slug=SLUGS[i % 3])
        time.sleep(0.002)  # one millisecond each: "newest first" is user-29 to user-00
    return service


def ids(page):
    return [s.user_id for s in page[0]]


def test_count_by_state(population):
    assert population.count_by_state() == {s: 10 for s in SLUGS}
    population.step_to("user-00", slug="goodbye->say_bye")
    population.reset("user-01")
    assert population.count_by_state() == {
        "hello->say_hello": 9,
        "hello->ask_name": 9,
        "goodbye->say_bye": 11,
    }


def test_counts_drop_a_slug_nobody_is_at(service):
    service.step_to("u", slug="hello->say_hello")
    service.step_to("u", slug="hello->ask_name")
    assert service.count_by_state() == {"hello->ask_name": 1}


NEWEST_FIRST = [f"user-{i:02d}" for i in reversed(range(30))]


def test_list_all_sessions_newest_activity_first(population):
    page, cursor = population.list_sessions(limit=100)
    assert [s.user_id for s in page] == NEWEST_FIRST
    assert cursor is None
    assert page[-2].slug == "hello->ask_name"


def test_activity_is_the_last_transition(population):
    time.sleep(0.002)  # a later millisecond than the population's
    population.step_to("user-05", slug="hello->say_hello")
    assert ids(population.list_sessions(limit=3)) == ["user-05", "user-29", "user-28"]
    population.peek("user-00")
    population.get("user-00")  # reads are not activity
    assert ids(population.list_sessions(limit=1)) == ["user-05"]


def test_pages_follow_the_cursor_to_the_end(population):
    seen, cursor = [], None
    while True:
        page, cursor = population.list_sessions(cursor=cursor, limit=7)
        seen += [s.user_id for s in page]
        if cursor is None:
            break
    assert seen == NEWEST_FIRST


def test_users_at_the_same_millisecond_page_without_loss_or_repeat(service):
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False):
        for i in range(25):
            service.step_to(f"tie-{i:02d}", slug=SLUGS[i % 2])
    for flow in (None, "hello"):
        seen, cursor = [], None
        while True:
            page, cursor = service.list_sessions(flow=flow, cursor=cursor, limit=4)
            seen += [s.user_id for s in page]
            if cursor is None:
                break
        assert seen == [f"tie-{i:02d}" for i in range(25)]  # ties: by user id


def test_a_page_of_users_crowded_in_one_shard_asks_that_shard_again(service):
    # A page asks each shard for a share of it first, then again for more only where the
    # merge used that share up: 40 users of one shard, newest first, fill a page of 30.
    crowded = [
        u for u in (f"crowd-{i:04d}" for i in range(5000)) if zlib.crc32(u.encode()) % 64 == 7
    ]
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=True) as clock:
        service.step_to("elsewhere-old", slug=SLUGS[0])
        for user_id in crowded[:40]:
            clock.shift(0.01)
            service.step_to(user_id, slug=SLUGS[len(user_id) % 2])
    page, cursor = service.list_sessions(limit=30)
    assert [s.user_id for s in page] == crowded[39:9:-1] and cursor is not None
    page, cursor = service.list_sessions(cursor=cursor, limit=30)
    assert [s.user_id for s in page] == [*crowded[9::-1], "elsewhere-old"] and cursor is None


def test_a_page_that_fills_exactly_reports_no_next_page(population):
    assert population.list_sessions(limit=30)[1] is None
    assert population.list_sessions(limit=29)[1] is not None


def test_filter_by_slug(population):
    assert ids(population.list_sessions(slug="hello->ask_name")) == [
        f"user-{i:02d}" for i in reversed(range(1, 30, 3))
    ]


def test_filter_by_flow(population):
    assert len(population.list_sessions(flow="hello")[0]) == 20
    assert ids(population.list_sessions(flow="goodbye", limit=2)) == ["user-29", "user-26"]
    seen, cursor = [], None
    while True:
        page, cursor = population.list_sessions(flow="hello", cursor=cursor, limit=6)
        seen += [s.user_id for s in page]
        if cursor is None:
            break
    assert seen == [u for u in NEWEST_FIRST if int(u[-2:]) % 3 != 2]


def test_filter_by_flow_and_slug(population):
    assert len(population.list_sessions(flow="hello", slug="hello->say_hello")[0]) == 10
    assert population.list_sessions(flow="goodbye", slug="hello->say_hello") == ([], None)


def test_filter_by_user_id_prefix_lists_by_user_id(population):
    assert ids(population.list_sessions(user_id_prefix="user-1")) == [
        f"user-{i}" for i in range(10, 20)
    ]
    assert ids(population.list_sessions(user_id_prefix="user-1", slug="hello->say_hello")) == [
        "user-12",
        "user-15",
        "user-18",
    ]
    assert ids(population.list_sessions(user_id_prefix="user-1", flow="goodbye")) == [
        "user-11",
        "user-14",
        "user-17",
    ]
    seen, cursor = [], None
    while True:
        page = ids(population.list_sessions(user_id_prefix="user-1", cursor=cursor, limit=4))
        cursor = population.list_sessions(user_id_prefix="user-1", cursor=cursor, limit=4)[1]
        assert page == sorted(page) and len(page) <= 4  # by user id within a page
        seen += page
        if cursor is None:
            break
    assert sorted(seen) == [f"user-{i}" for i in range(10, 20)]


def test_an_exact_user_id_comes_first_in_its_prefix_search(service):
    for user in ("ab", "a", "abc", "b"):
        service.step_to(user, slug="hello->say_hello")
    assert ids(service.list_sessions(user_id_prefix="ab")) == ["ab", "abc"]


def test_a_search_anywhere_in_the_id_finds_suffixes_and_substrings(service):
    for user in ("whatsapp:+447700900015", "+447700900015", "+4477009000150", "sms:+1555", "x7"):
        service.step_to(user, slug="hello->say_hello")
    # the exact id first, then the others containing it, by user id
    assert ids(service.list_sessions(user_id_contains="+447700900015")) == [
        "+447700900015",
        "+4477009000150",
        "whatsapp:+447700900015",
    ]
    assert ids(service.list_sessions(user_id_contains="app:")) == ["whatsapp:+447700900015"]
    assert ids(service.list_sessions(user_id_contains="7", slug="hello->say_hello")) == [
        "+447700900015",
        "+4477009000150",
        "whatsapp:+447700900015",
        "x7",
    ]
    # glob characters are searched for as they are; the activity's hex digits never match
    assert ids(service.list_sessions(user_id_contains="*")) == []
    assert ids(service.list_sessions(user_id_contains="f")) == []


def test_a_search_anywhere_pages_with_its_own_cursor(service, monkeypatch):
    monkeypatch.setattr(browsing, "PREFIX_SCAN_CALLS", 1)
    for i in range(12):
        service.step_to(f"id-{i:02d}-x", slug=SLUGS[0])
    seen, cursor = [], None
    while True:
        page, cursor = service.list_sessions(user_id_contains="-x", cursor=cursor, limit=5)
        seen += [s.user_id for s in page]
        if cursor is None:
            break
    assert sorted(seen) == [f"id-{i:02d}-x" for i in range(12)]
    prefix_cursor = service.list_sessions(user_id_prefix="id", limit=1)[1]
    with pytest.raises(ValueError, match="cursor"):
        service.list_sessions(user_id_contains="id", cursor=prefix_cursor)
    with pytest.raises(TypeError):
        service.list_sessions(user_id_prefix="id", user_id_contains="id")


def test_a_prefix_search_narrowed_by_a_filter_stops_at_its_budget(service, monkeypatch):
    monkeypatch.setattr(browsing, "PREFIX_SCAN_CALLS", 1)
    for i in range(12):
        service.step_to(f"p{i:02d}", slug="hello->ask_name" if i in (3, 11) else SLUGS[0])
    seen, pages, cursor = [], 0, None
    while True:
        page, cursor = service.list_sessions(
            user_id_prefix="p", slug="hello->ask_name", cursor=cursor
        )
        seen, pages = seen + ids((page, cursor)), pages + 1
        if cursor is None:
            break
    assert sorted(seen) == ["p03", "p11"]
    assert pages == 64  # one ZSCAN call a page: a shard's small index a page


def test_browse_gives_last_activity_and_pending_steps(service):
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
        service.step_to("u", slug="hello->say_hello")
    with time_machine.travel(datetime(2026, 3, 1, 13, tzinfo=UTC), tick=False):
        service.step_to("u", slug="hello->ask_name")
        service.step_to_in("u", 3600, slug="goodbye->say_bye")
    for kwargs in ({}, {"user_id_prefix": "u"}, {"slug": "hello->ask_name"}):
        (row,), cursor = service.browse(**kwargs)
        assert row.session.slug == "hello->ask_name"
        assert row.last_activity == datetime(2026, 3, 1, 13, tzinfo=UTC)
        assert row.pending_steps == 1
        assert cursor is None


def test_browsing_never_slides_expiry(service, settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 100}
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    key = service.store.keys.user("u").session
    redis_client.pexpire(key, 50_000)
    service.browse()
    service.browse(user_id_prefix="u")
    service.peek("u")
    assert redis_client.pttl(key) <= 50_000


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", "", "dTp4", "MTIzOg", "YWJjOng", "!!!", "wrI6eA"],  # "²:x"
)
def test_a_foreign_or_forged_cursor_is_a_value_error(population, cursor):
    with pytest.raises(ValueError, match="cursor"):
        population.list_sessions(cursor=cursor)


def test_a_cursor_of_another_order_is_refused(population):
    by_activity = population.list_sessions(limit=2)[1]
    by_user_id = population.list_sessions(user_id_prefix="user", limit=2)[1]
    with pytest.raises(ValueError, match="cursor"):
        population.list_sessions(user_id_prefix="user", cursor=by_activity)
    with pytest.raises(ValueError, match="cursor"):
        population.list_sessions(cursor=by_user_id)


def test_moved_users_leave_the_old_slugs_list(population):
    population.update_session_to("user-01", slug="hello->say_hello")
    assert "user-01" not in ids(population.list_sessions(slug="hello->ask_name"))
    assert "user-01" in ids(population.list_sessions(slug="hello->say_hello"))


@pytest.mark.parametrize("limit", [0, -1, 1001, "5", None])
def test_a_bad_limit_is_a_value_error(service, limit):
    with pytest.raises(ValueError):
        service.list_sessions(limit=limit)


@pytest.mark.parametrize("kwargs", [{"slug": "bad"}, {"flow": "bad flow"}])
def test_bad_filters_are_value_errors(service, kwargs):
    with pytest.raises(ValueError):
        service.list_sessions(**kwargs)


def test_a_slug_set_by_hand_is_listed_before_a_get_picks_it_up(service, redis_client):
    service.step_to("hand", slug="hello->say_hello")
    redis_client.set(service.store.keys.user("hand").session, "goodbye->say_bye")
    (row,), _ = service.browse(user_id_prefix="ha")
    assert row.session.slug == "goodbye->say_bye"
    assert service.list_sessions(slug="goodbye->say_bye") == ([], None)  # not indexed yet
    service.get("hand")
    assert ids(service.list_sessions(slug="goodbye->say_bye")) == ["hand"]
