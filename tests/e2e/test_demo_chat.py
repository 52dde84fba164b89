"""The demo bot in a real browser, as a newcomer meets it after `make demo`: chat at /, watch
the re-engagement nudge arrive (DEMO_NUDGE_AFTER=3 here), go through the whole conversation
(a branch, a step_back, a catch-all), see the slug and history beside the chat, open the same
user in the admin; a second tab is a second user.

The demo runs as `python -m botproject` in a subprocess (its own private Redis, its RQ worker,
its database file), exactly as `make demo` starts it. var/screenshots/demo_chat.png is the
screenshot the README shows (copied to docs/screenshots/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from ..demo_process import Demo, start_demo

pytestmark = pytest.mark.slow
NUDGE_AFTER = 3


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    demo = start_demo(tmp_path, nudge_after=NUDGE_AFTER)
    try:
        yield demo
    finally:
        demo.stop()


def say(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def bot_said(page: Page, text: str, timeout: float = 10_000) -> None:
    message = page.locator("#messages li.bot").filter(has_text=text).last
    expect(message).to_be_visible(timeout=timeout)


def test_a_whole_conversation_with_the_demo_bot(
    demo: Demo, page: Page, browser: Browser, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto(demo.base + "/")
    user_id = page.locator("#user-id").inner_text()
    assert user_id.startswith("web-")
    expect(page.locator("#slug")).to_have_text("none yet")

    say(page, "hello there")  # a new user: the catch-all starts the hello flow
    bot_said(page, "Hello! I am the stealth-sessions demo bot.")
    bot_said(page, "What is your name?")
    expect(page.locator("#slug")).to_have_text("hello->ask_name")
    expect(page.locator("#previous")).to_have_text("hello->say_hello")
    expect(page.locator("#nudge")).to_contain_text("The bot nudges you in")

    # No answer: the scheduled step fires in the RQ worker and the nudge lands in the chat.
    # (Its due time, then the RQ scheduler's next poll: allow for a machine under load.)
    bot_said(page, "Still there? Tell me your name and we carry on.", timeout=60_000)
    expect(page.locator("#slug")).to_have_text("follow_up->nudge")
    expect(page.locator("#nudge")).to_be_hidden()
    expect(page.locator("#history li").first).to_contain_text(
        "hello->ask_name → follow_up->nudge (step_to_in, scheduler)"
    )

    say(page, "Ada")
    bot_said(page, "Nice to meet you, Ada!")
    bot_said(page, "Would you like to order a pizza? (yes/no)")
    say(page, "maybe")
    bot_said(page, "Please answer yes or no.")
    say(page, "yes")  # the branch: to the order flow
    bot_said(page, "Which size: small, medium or large?")
    expect(page.locator("#slug")).to_have_text("order->ask_size")
    say(page, "large")
    bot_said(page, "Which topping")
    expect(page.locator("#back-to")).to_have_text("order->ask_size")
    say(page, "back")  # step_back, to the back-to session
    expect(page.locator("#slug")).to_have_text("order->ask_size")
    expect(page.locator("#history li").first).to_contain_text("(step_back, code)")
    say(page, "medium")
    say(page, "mushroom")
    bot_said(page, "Shall I place the order? (yes/no)")
    say(page, "yes")
    bot_said(page, "Order placed: your pizza is on its way!")
    bot_said(page, "Goodbye! Send anything to start again.")
    expect(page.locator("#slug")).to_have_text("goodbye->say_bye")
    screenshot(page, "demo_chat")

    # Another tab is another user, with a conversation of its own.
    other = page.context.new_page()
    other.goto(demo.base + "/")
    other_id = other.locator("#user-id").inner_text()
    assert other_id.startswith("web-") and other_id != user_id
    say(other, "hi")
    bot_said(other, "What is your name?")
    expect(page.locator("#slug")).to_have_text("goodbye->say_bye")
    expect(page.locator("#messages li.user")).to_have_count(9)
    expect(other.locator("#messages li")).to_have_count(3)

    # The link beside the chat opens this user in the admin (after logging in).
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="This user in the admin").click()
    admin = opened.value
    admin.get_by_label("Username").fill("admin")
    admin.get_by_label("Password").fill(demo.password)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.locator("#content")).to_contain_text(user_id)
    expect(admin.locator("#content")).to_contain_text("goodbye->say_bye")
