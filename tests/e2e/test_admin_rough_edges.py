"""The admin's rough edges, filed in issue 14, checked in a real browser at 1400 pixels with
Django's app sidebar open: every column visible without a horizontal scroll; a search by any
part of a user id; an empty search without the action bar and with a way back; "Previous
page"; "just now"; a move to the current state that changes and logs nothing; "Reset
selected" coming back to the filtered list; redirecting states marked in the choices; no
back-to preselected when none is set."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from stealth_sessions.service import SessionService

from .test_admin_browser import listed, log_in, row

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/admin/stealth_sessions/session/"
PHONES = [f"whatsapp:+4477009000{i:02d}" for i in range(12)]


@pytest.fixture
def admin_user(db) -> User:
    from .test_admin_browser import PASSWORD, USERNAME

    return User.objects.create_superuser(USERNAME, "support@example.com", PASSWORD)


@pytest.fixture
def phones(service: SessionService, settings) -> SessionService:
    """Realistic rows: long ids, slugs in all three slug columns, an expiry, pending steps."""
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 7 * 24 * 3600}
    from stealth_sessions.service import get_session_service

    service = get_session_service()
    for i, user in enumerate(PHONES):
        service.step_to(user, slug="hello->say_hello")
        service.step_to(user, slug="hello->ask_name" if i % 2 else "follow_up->nudge")
        service.set_back_to(user, slug="goodbye->say_bye")
        service.step_to_in(user, 600, slug="follow_up->wait")
    return service


@pytest.fixture
def wide_page(page: Page) -> Page:
    page.set_viewport_size({"width": 1400, "height": 900})
    return page


def test_the_list_fits_1400_pixels_with_the_sidebar_open(
    live_server, wide_page: Page, phones, admin_user, screenshot
) -> None:
    page = wide_page
    log_in(page, live_server.url)
    page.goto(live_server.url + LIST)
    expect(page.locator("#nav-sidebar")).to_be_visible()
    expect(page.locator("#main")).to_have_class(re.compile(r"\bshifted\b"))
    expect(page.locator("#result_list tbody tr")).to_have_count(len(PHONES))
    screenshot(page, "admin_sessions_list_1400")
    overflow = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth - r.clientWidth; })()"
    )
    assert overflow <= 0, f"{overflow} px behind a horizontal scroll"
    last = page.locator("#result_list thead th").last.bounding_box()
    assert last and last["x"] + last["width"] <= 1400
    # a slug wraps, if at all, after its "->": each part stays whole
    expect(row(page, PHONES[1]).locator("td.field-slug")).to_have_text("hello->ask_name")
    expect(row(page, PHONES[1]).locator("td.field-last_activity")).to_have_text("just now")


def test_search_by_the_end_of_an_id_empty_results_and_previous_page(
    live_server, wide_page: Page, phones, admin_user, monkeypatch
) -> None:
    from stealth_sessions.admin.options import SessionAdmin

    page = wide_page
    log_in(page, live_server.url)
    page.goto(live_server.url + LIST + "?flow=hello")

    # The number alone finds the WhatsApp id (a search anywhere in the id).
    page.fill("#searchbar", "+447700900005")
    page.press("#searchbar", "Enter")
    assert listed(page) == ["whatsapp:+447700900005"]
    expect(page.locator("#changelist-search")).to_contain_text("No exact match")

    # No result: no action bar, and a way back to the (still filtered) list.
    page.fill("#searchbar", "nobody")
    page.press("#searchbar", "Enter")
    expect(page.locator("#changelist-form")).to_contain_text("No sessions for “nobody”.")
    expect(page.locator("#changelist-form .actions")).to_have_count(0)
    page.get_by_role("link", name="Clear the search").click()
    expect(page).to_have_url(re.compile(r"\?flow=hello$"))
    assert sorted(listed(page)) == [u for i, u in enumerate(PHONES) if i % 2]
    expect(page.locator("#changelist-form .actions")).to_be_visible()

    # Pages of 4: Next, Next, then Previous twice leads back to the first page.
    monkeypatch.setattr(SessionAdmin, "list_per_page", 4)
    page.goto(live_server.url + LIST)
    first = listed(page)
    page.get_by_role("link", name="Next page ›").click()
    second = listed(page)
    page.get_by_role("link", name="Next page ›").click()
    third = listed(page)
    assert len(set(first + second + third)) == 12
    page.get_by_role("link", name="‹ Previous page").click()
    assert listed(page) == second
    page.get_by_role("link", name="‹ Previous page").click()
    assert listed(page) == first
    expect(page.get_by_role("link", name="‹ Previous page")).to_have_count(0)


def test_moves_back_tos_and_reset_selected(
    live_server, wide_page: Page, phones: SessionService, admin_user
) -> None:
    page = wide_page
    log_in(page, live_server.url)
    user = PHONES[1]
    page.goto(live_server.url + LIST + "?slug=hello-%3Eask_name")
    page.get_by_role("link", name=user, exact=True).click()

    move = page.locator("form.ss-move")
    expect(move.locator("select[name=target] option[value='hello->old_name']")).to_have_text(
        "hello->old_name (redirects to goodbye->say_bye)"
    )
    # Moving them where they are: said plainly, nothing written, nothing logged.
    version = phones.peek(user).version
    expect(move.locator("select[name=target]")).to_have_value("hello->ask_name")
    move.get_by_role("button", name="Move").click()
    expect(page.locator("ul.messagelist li.info")).to_have_text(
        f"{user.capitalize()} is already at hello->ask_name: nothing changed."
    )
    assert phones.peek(user).version == version
    assert not LogEntry.objects.exists()

    # No back-to set: none preselected.
    phones.reset(PHONES[3])
    phones.step_to(PHONES[3], slug="hello->ask_name")
    page.goto(live_server.url + LIST + "?q=" + PHONES[3].replace("+", "%2B"))
    page.get_by_role("link", name=PHONES[3], exact=True).click()
    expect(page.locator("form.ss-back-to select[name=target]")).to_have_value("")

    # Reset selected, from a filtered list: back to the same filtered list.
    page.goto(live_server.url + LIST + "?slug=hello-%3Eask_name")
    row(page, PHONES[5]).locator("input.action-select").check()
    page.get_by_role("button", name="Go").click()
    expect(page.locator("#ss-count")).to_have_text("1")
    page.get_by_role("button", name="Yes, reset 1").click()
    expect(page).to_have_url(re.compile(r"\?slug=hello-%3Eask_name$"))
    expect(page.locator("ul.messagelist li.success")).to_have_text("Reset 1 session.")
    assert PHONES[5] not in listed(page) and len(listed(page)) == 5
    assert phones.peek(PHONES[5]) is None
