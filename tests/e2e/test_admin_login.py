"""Smoke test of the browser tests' machinery: log in to the Django admin through its form."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

USERNAME = "admin"
PASSWORD = "e2e-Secret-123"


def test_admin_login(live_server, page: Page, screenshot: Callable[[Page, str], Path]) -> None:
    get_user_model().objects.create_superuser(USERNAME, "admin@example.com", PASSWORD)

    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text(USERNAME, ignore_case=True)
    expect(page.locator("#content h1")).to_have_text("Site administration")
    assert screenshot(page, "admin_index").stat().st_size > 0
