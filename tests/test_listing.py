"""count_by_state and list_sessions: exact, ordered by user id, paginated by cursor."""

import pytest

SLUGS = ["hello->say_hello", "hello->ask_name", "goodbye->say_bye"]


@pytest.fixture
def population(service):
    for i in range(30):
        service.step_to(f"user-{i:02d}", slug=SLUGS[i % 3])
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


def test_list_all_sessions_in_user_id_order(population):
    page, cursor = population.list_sessions(limit=100)
    assert [s.user_id for s in page] == [f"user-{i:02d}" for i in range(30)]
    assert cursor is None
    assert page[1].slug == "hello->ask_name"


def test_pages_follow_the_cursor_to_the_end(population):
    seen, cursor = [], None
    while True:
        page, cursor = population.list_sessions(cursor=cursor, limit=7)
        seen += [s.user_id for s in page]
        if cursor is None:
            break
    assert seen == [f"user-{i:02d}" for i in range(30)]


def test_a_page_that_fills_exactly_reports_no_next_page(population):
    assert population.list_sessions(limit=30)[1] is None
    assert population.list_sessions(limit=29)[1] == "user-28"


def test_filter_by_slug(population):
    assert ids(population.list_sessions(slug="hello->ask_name")) == [
        f"user-{i:02d}" for i in range(1, 30, 3)
    ]


def test_filter_by_flow(population):
    assert len(population.list_sessions(flow="hello")[0]) == 20
    assert ids(population.list_sessions(flow="goodbye", limit=2)) == ["user-02", "user-05"]


def test_filter_by_flow_and_slug(population):
    assert len(population.list_sessions(flow="hello", slug="hello->say_hello")[0]) == 10
    assert population.list_sessions(flow="goodbye", slug="hello->say_hello") == ([], None)


def test_filter_by_user_id_prefix(population):
    assert ids(population.list_sessions(user_id_prefix="user-1")) == [
        f"user-{i}" for i in range(10, 20)
    ]
    assert ids(population.list_sessions(user_id_prefix="user-1", slug="hello->say_hello")) == [
        "user-12",
        "user-15",
        "user-18",
    ]
    page, cursor = population.list_sessions(user_id_prefix="user-1", limit=4)
    assert cursor == "user-13"
    assert ids(population.list_sessions(user_id_prefix="user-1", cursor=cursor)) == [
        f"user-{i}" for i in range(14, 20)
    ]


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
