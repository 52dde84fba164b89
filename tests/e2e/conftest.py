"""Fixtures for the browser tests: Playwright driving Debian's chromium against `live_server`.

The browser is the system's `chromium` (Debian's package, which `make test` installs with
apt-get when it can), or the executable named by STEALTH_CHROMIUM; Playwright's own browser
download is never used. Without a browser these tests are skipped, unless
STEALTH_REQUIRE_BROWSER=1 (as in .ci/run), where they fail: CI must never skip them silently.

The database: pytest-django's `live_server` serves from a thread of this process and, for an
in-memory SQLite database (tests/settings.py), hands that thread the test's own connection, so
both see the same data; a test using `live_server` also gets `transactional_db` (pytest-django
adds it), so what the test writes is committed and visible to the server, and flushed afterwards.
No file-based database is needed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Playwright's sync API runs its asyncio event loop in this thread (in a greenlet) and, after
# each call, leaves that loop set as this thread's running loop. Django then takes any ORM call
# from this thread for one made inside a coroutine and raises SynchronousOnlyOperation: in these
# tests (creating a user) and, as the browser lives for the whole session, possibly in tests run
# after them. No ORM call here is made from a coroutine, so they are safe: allow them for the
# whole run. Django reads the variable at each call, so setting it at import is enough.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"  # var/ is git-ignored

# Headless, and quiet: without the background-networking flags Chromium keeps trying to reach
# Google's services, which on a closed network only floods the log and slows the start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 15_000


def _no_browser(reason: str) -> NoReturn:
    """Skip, or fail when STEALTH_REQUIRE_BROWSER=1 (CI): a missing browser is then an error."""
    if os.environ.get("STEALTH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"STEALTH_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def chromium_executable() -> str | None:
    named = os.environ.get("STEALTH_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("chromium")


# Module, not session: Playwright's sync API runs an event loop in the main thread while it is
# open, and the async tests after these (pytest-asyncio, async_to_sync) need that thread free.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    if executable is None:
        named = os.environ.get("STEALTH_CHROMIUM")
        _no_browser(
            f"STEALTH_CHROMIUM={named} is not an executable file"
            if named
            else "no `chromium` on PATH (`make test` installs it with apt-get when run as "
            "root; or name one with STEALTH_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no cookies or storage shared between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def save_screenshot(page: Page, name: str) -> Path:
    """Saves the whole page as var/screenshots/<name>.png and returns the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """`screenshot(page, name)`: saves var/screenshots/<name>.png, returns its path."""
    return save_screenshot
