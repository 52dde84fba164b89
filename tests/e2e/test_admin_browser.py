"""The session admin in a real browser, used as a support person would: log in through the form,
find users in the list (search, filters), move one, reset one, reset a whole state and a
selection, read the dashboard. After each step the test reads Redis through the service (and
once raw) to check that what the page says happened did happen.

Screenshots of each page go to var/screenshots/<name>.png (1280 pixels wide, the whole page);
docs/screenshots/ holds copies of four of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import Locator, Page, expect

from stealth_sessions.service import SessionService, get_session_service

USERNAME = "support"
PASSWORD = "e2e-Support-456"
PERMISSIONS = ("view_session", "change_session", "bulk_change_session")

# Who is where before each test opens the admin.
SEED = {
    "hello->say_hello": ["+4470001", "+44700012", "alice"],
    "hello->ask_name": ["bob", "carol", "dave", "erin"],
    "hello->get_name": ["frank"],
    "goodbye->say_bye": ["grace", "heidi"],
    "follow_up->nudge": ["ivan", "judy"],
    "follow_up->wait": ["mallory"],
}
EVERYONE = sorted(u for users in SEED.values() for u in users)
SCHEDULED = {"bob": "follow_up->nudge", "ivan": "follow_up->wait", "judy": "follow_up->wait"}

Screenshot = Callable[[Page, str], Path]


@pytest.fixture
def seeded(service: SessionService) -> SessionService:
    for slug, users in SEED.items():
        for user in users:
            if slug != "hello->say_hello":
                service.step_to(user, slug="hello->say_hello")  # a history of two moves
            service.step_to(user, slug=slug)
    for user, target in SCHEDULED.items():
        service.step_to_in(user, 600, slug=target)
    assert service.count_by_state() == {slug: len(users) for slug, users in SEED.items()}
    return service


@pytest.fixture
def support_user(db) -> User:
    """Staff with the three session permissions, not a superuser."""
    user = User.objects.create_user(USERNAME, "support@example.com", PASSWORD, is_staff=True)
    user.user_permissions.add(
        # The codenames also exist for django.contrib.sessions' Session: name the app.
        *Permission.objects.filter(
            codename__in=PERMISSIONS, content_type__app_label="stealth_sessions"
        )
    )
    assert not user.is_superuser
    assert user.has_perm("stealth_sessions.bulk_change_session")
    return user


def log_in(page: Page, base_url: str) -> None:
    page.goto(base_url + "/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text(USERNAME, ignore_case=True)


def open_sessions(page: Page, base_url: str) -> None:
    """Log in, then click "Sessions" on the admin index."""
    log_in(page, base_url)
    page.locator("#content-main").get_by_role("link", name="Sessions", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/stealth_sessions/session/$"))
    expect(page.locator("#content h1")).to_have_text("Sessions")
    # Fold the admin's app sidebar (remembered for this browser context), as one does on a
    # narrow screen: the list's eight columns then fit in 1280 pixels.
    page.locator("#toggle-nav-sidebar").click()
    expect(page.locator("#main")).not_to_have_class(re.compile(r"\bshifted\b"))


def listed(page: Page) -> list[str]:
    """The user ids of the list's rows, in order."""
    return page.locator("#result_list tbody th.field-user_id").all_inner_texts()


def row(page: Page, user_id: str) -> Locator:
    return page.locator("#result_list tbody tr").filter(
        has=page.get_by_role("link", name=user_id, exact=True)
    )


def success(page: Page) -> Locator:
    return page.locator("ul.messagelist li.success")


def state_filter(page: Page, slug: str, count: int) -> Locator:
    return page.locator("#changelist-filter").get_by_role(
        "link", name=f"{slug} ({count})", exact=True
    )


def assert_admin_styled(page: Page) -> None:
    """The admin's CSS was served (a page without it would pass every text assertion)."""
    header = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header not in ("", "rgba(0, 0, 0, 0)", "transparent"), header


# -- one user: find, look, move, reset ------------------------------------------------------


def test_support_finds_moves_and_resets_a_user(
    live_server,
    page: Page,
    screenshot: Screenshot,
    seeded: SessionService,
    support_user,
    redis_client,
) -> None:
    service = seeded

    # 1-2. Log in through the form; "Sessions" on the index; every seeded user is listed.
    open_sessions(page, live_server.url)
    assert_admin_styled(page)
    assert sorted(listed(page)) == EVERYONE
    expect(page.locator("#changelist-search")).to_contain_text(f"{len(EVERYONE)} sessions")
    expect(row(page, "bob").locator("td.field-slug")).to_have_text("hello->ask_name")
    expect(row(page, "bob").locator("td.field-previous")).to_have_text("hello->say_hello")
    expect(row(page, "ivan").locator("td.field-pending_steps")).to_have_text("1")
    expect(row(page, "alice").locator("td.field-pending_steps")).to_have_text("0")
    expect(state_filter(page, "hello->ask_name", 4)).to_be_visible()
    screenshot(page, "admin_sessions_list")

    # 3. Search by the exact id: that user first, then the ids containing it.
    page.fill("#searchbar", "+4470001")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"\?q=%2B4470001$"))
    assert listed(page) == ["+4470001", "+44700012"]
    expect(page.locator("#changelist-search")).to_contain_text("Exact match first")
    # ...and by a prefix that is no one's id.
    page.fill("#searchbar", "+44700")
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(r"\?q=%2B44700$"))
    expect(page.locator("#changelist-search")).to_contain_text("No exact match")
    assert listed(page) == ["+4470001", "+44700012"]
    page.fill("#searchbar", "nobody")
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(r"\?q=nobody$"))
    expect(page.locator("#changelist-form")).to_contain_text("No sessions for “nobody”")
    assert listed(page) == []

    # Filter by state in the sidebar (the search cleared first).
    page.fill("#searchbar", "")
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(r"\?q=$"))
    assert len(listed(page)) == len(EVERYONE)
    state_filter(page, "hello->ask_name", 4).click()
    expect(page).to_have_url(re.compile(r"slug=hello-%3Eask_name"))
    assert sorted(listed(page)) == SEED["hello->ask_name"]
    expect(page.locator("#changelist-filter li.selected")).to_have_count(1)
    expect(page.locator("#changelist-filter li.selected")).to_have_text("hello->ask_name (4)")
    expect(page.locator(".object-tools")).to_contain_text("Reset everyone at hello->ask_name")
    screenshot(page, "admin_sessions_filtered")
    # Browsing changed nothing.
    assert service.count_by_state() == {slug: len(users) for slug, users in SEED.items()}

    # 4. bob's page, by clicking his id.
    page.locator("#result_list").get_by_role("link", name="bob", exact=True).click()
    expect(page.locator("#content h1")).to_have_text("bob")
    expect(page.locator("#ss-current")).to_have_text("hello->ask_name")
    expect(page.locator("#ss-previous")).to_have_text("hello->say_hello")
    expect(page.locator(".ss-history tbody tr")).to_have_count(2)
    expect(page.locator(".ss-steps tbody tr")).to_have_count(1)
    expect(page.locator(".ss-steps")).to_contain_text("follow_up->nudge")
    version = service.peek("bob").version
    expect(page.locator("#ss-version")).to_have_text(str(version))
    screenshot(page, "admin_session_detail")

    move = page.locator("form.ss-move")
    expect(move.locator("select[name=target]")).to_have_value("hello->ask_name")
    move.locator("select[name=target]").select_option("goodbye->say_bye")
    move.locator("select[name=method]").select_option("step_to")
    move.get_by_role("button", name="Move").click()

    expect(success(page)).to_have_text("Moved bob to goodbye->say_bye (step_to).")
    expect(page.locator("#ss-current")).to_have_text("goodbye->say_bye")
    expect(page.locator(".ss-history tbody tr").first.locator(".ss-origin")).to_have_text("admin")
    key = service.store.keys.user("bob").session
    assert redis_client.get(key) == b"goodbye->say_bye"
    session = service.peek("bob")
    assert (session.slug, session.previous, session.version) == (
        "goodbye->say_bye",
        "hello->ask_name",
        version + 1,
    )
    latest = service.history("bob")[0]
    assert (latest.origin, latest.method, latest.source, latest.target) == (
        "admin",
        "step_to",
        "hello->ask_name",
        "goodbye->say_bye",
    )
    assert len(service.scheduled_steps("bob")) == 1  # a move leaves scheduled steps alone

    # 5. Reset him: the confirmation first, and nothing changes until "Yes, reset".
    page.get_by_role("link", name="Reset", exact=True).click()
    expect(page.locator("#content h1")).to_have_text("Reset bob?")
    expect(page.locator("#content")).to_contain_text(
        "Reset the session of bob? Their current (goodbye->say_bye)"
    )
    expect(page.locator("#content")).to_contain_text("Their 1 pending scheduled step is cancelled.")
    screenshot(page, "admin_session_reset_confirm")
    assert redis_client.get(key) == b"goodbye->say_bye"

    page.get_by_role("button", name="Yes, reset").click()
    expect(page).to_have_url(re.compile(r"/admin/stealth_sessions/session/$"))
    expect(success(page)).to_have_text("The session of bob was reset.")
    assert "bob" not in listed(page)
    assert redis_client.get(key) is None
    assert service.peek("bob") is None
    assert service.history("bob") == []
    assert service.scheduled_steps("bob") == []
    assert service.count_by_state() == {
        **{slug: len(users) for slug, users in SEED.items()},
        "hello->ask_name": 3,
    }


# -- bulk -----------------------------------------------------------------------------------


def test_reset_everyone_at_a_state(
    live_server,
    page: Page,
    screenshot: Screenshot,
    seeded: SessionService,
    support_user,
    redis_client,
    settings,
) -> None:
    # Without a scheduling engine a small state is reset in the request (with one, it is a
    # background job: tests/test_bulk_jobs.py).
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": None}
    service = get_session_service()
    open_sessions(page, live_server.url)
    state_filter(page, "hello->ask_name", 4).click()
    expect(page).to_have_url(re.compile(r"\?slug=hello-%3Eask_name$"))
    assert sorted(listed(page)) == SEED["hello->ask_name"]

    page.get_by_role("link", name="Reset everyone at hello->ask_name").click()
    expect(page.locator("#content h1")).to_have_text("Reset everyone at hello->ask_name?")
    expect(page.locator("#ss-count")).to_have_text("4")
    screenshot(page, "admin_bulk_reset_confirm")
    assert service.count_by_state()["hello->ask_name"] == 4  # not yet

    page.get_by_role("button", name="Yes, reset everyone at hello->ask_name").click()
    expect(success(page)).to_have_text("Reset 4 sessions at hello->ask_name.")
    counts = service.count_by_state()
    assert "hello->ask_name" not in counts
    assert counts == {slug: len(u) for slug, u in SEED.items() if slug != "hello->ask_name"}
    for user in SEED["hello->ask_name"]:
        assert redis_client.get(service.store.keys.user(user).session) is None
    assert service.scheduled_steps("bob") == []
    # The list no longer offers the state.
    expect(page.locator("#changelist-filter")).not_to_contain_text("hello->ask_name")
    assert sorted(listed(page)) == [u for u in EVERYONE if u not in SEED["hello->ask_name"]]


def test_reset_selected_sessions(
    live_server, page: Page, screenshot: Screenshot, seeded: SessionService, support_user
) -> None:
    service = seeded
    open_sessions(page, live_server.url)
    page.get_by_role("checkbox", name="Select grace").check()
    page.get_by_role("checkbox", name="Select ivan").check()
    page.locator("#changelist-form select[name=action]").select_option("reset_selected")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("#content h1")).to_have_text("Reset the selected sessions?")
    expect(page.locator("#ss-count")).to_have_text("2")
    assert sorted(page.locator("#content ul li").all_inner_texts()) == ["grace", "ivan"]
    screenshot(page, "admin_reset_selected_confirm")
    assert service.peek("grace") is not None and service.peek("ivan") is not None

    page.get_by_role("button", name="Yes, reset 2").click()
    expect(success(page)).to_have_text("Reset 2 sessions.")
    assert service.peek("grace") is None and service.peek("ivan") is None
    assert service.scheduled_steps("ivan") == []
    assert service.peek("heidi").slug == "goodbye->say_bye"  # the others are untouched
    assert service.peek("judy").slug == "follow_up->nudge"
    assert service.count_by_state() == {
        **{slug: len(users) for slug, users in SEED.items()},
        "goodbye->say_bye": 1,
        "follow_up->nudge": 1,
    }
    assert sorted(listed(page)) == [u for u in EVERYONE if u not in ("grace", "ivan")]


# -- the dashboard --------------------------------------------------------------------------


def test_dashboard_charts_users_per_state(
    live_server,
    page: Page,
    screenshot: Screenshot,
    seeded: SessionService,
    support_user,
    redis_client,
) -> None:
    service = seeded
    # A state renamed in a deploy: its users still show, flagged.
    for user in ("kim", "lee"):
        service.step_to(user, slug="hello->say_hello")
        redis_client.set(service.store.keys.user(user).session, "hello->greet_v1")
        service.get(user)  # re-indexes the hand-edited slug
    counts = service.count_by_state()
    assert counts["hello->greet_v1"] == 2

    open_sessions(page, live_server.url)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator("#content h1")).to_have_text("Users per flow and state")
    assert_admin_styled(page)
    expect(page.locator(".ss-dashboard > p").first).to_contain_text(
        f"{sum(counts.values())} sessions in all"
    )
    expect(page.locator(".ss-dashboard .module h2")).to_have_text(
        ["hello (10)", "goodbye (2)", "follow_up (3)"]
    )

    # Every state of the flow map has a bar, with the count Redis has; the busiest is full width.
    charted: dict[str, tuple[int, float]] = {}
    for tr in page.locator(".ss-chart tr").all():
        href = tr.get_by_role("link").get_attribute("href") or ""
        slug = parse_qs(urlsplit(href).query)["slug"][0]
        count = int(tr.locator(".ss-count").inner_text())
        bar = tr.locator(".ss-bar")
        assert bar.get_attribute("aria-label") == f"{count} user{'' if count == 1 else 's'}"
        width = float(re.search(r"width: ([\d.]+)%", bar.get_attribute("style") or "")[1])
        charted[slug] = (count, width)
    assert {slug: c for slug, (c, _) in charted.items() if c} == counts
    assert charted["hello->ask_name"] == (4, 100.0)
    assert charted["hello->say_hello"] == (3, 75.0)
    assert charted["hello->old_name"] == (0, 0.0)
    assert set(charted) >= {
        f"{flow}->{state}"
        for flow in service.flow_map.flows()
        for state in service.flow_map.states(flow)
    }
    # The drawn bar widths follow the counts.
    full = page.locator(".ss-chart tr", has_text="ask_name").locator(".ss-bar").bounding_box()
    half = page.locator(".ss-chart tr", has_text="greet_v1").locator(".ss-bar").bounding_box()
    assert full and half and half["width"] == pytest.approx(full["width"] / 2, abs=2)
    unknown = page.locator(".ss-chart tr.ss-unknown")
    expect(unknown).to_have_count(1)
    expect(unknown).to_contain_text("greet_v1")
    screenshot(page, "admin_dashboard")

    # A state's name leads to its users.
    page.locator(".ss-chart").get_by_role("link", name="greet_v1").click()
    expect(page).to_have_url(re.compile(r"\?slug=hello-%3Egreet_v1$"))
    assert sorted(listed(page)) == ["kim", "lee"]
    expect(row(page, "kim").locator(".ss-warn")).to_have_text("(unknown)")
