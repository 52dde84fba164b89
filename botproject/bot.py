"""The demo bot, written the way the README tells you to write yours.

A message comes in (``handle_message``, awaited by the async webhook view in ``views.py``):
the bot takes the user's lock, reads the session, and dispatches to the handler of the
current state, which moves the user with ``astep_to``: the async service, end to end. What
the bot says on entering a state is that state's ``@on_enter`` action (``async def``, awaited
on the event loop); ``send()`` puts it in the outbox (``models.Message``, written with
Django's async ORM) that the chat page and ``examples/bot_client.py`` read, where a real bot
would call its platform's send API.

Re-engagement: a user left at ``hello->ask_name`` is nudged (``follow_up->nudge``) after
DEMO_NUDGE_AFTER seconds, unless they answered meanwhile. That step runs in the RQ worker
(``python manage.py rqworker default --with-scheduler``), whose ``send()`` lands in the same
outbox: the worker's step is synchronous, and runs the async action to completion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.conf import settings

from stealth_sessions.service import SessionService, get_session_service
from stealth_sessions.signals import on_enter
from stealth_sessions.values import Session

SIZES = ("small", "medium", "large")
TOPPINGS = ("cheese", "mushroom", "pepperoni")
YES = ("yes", "y", "yeah", "sure", "ok", "oui")
NO = ("no", "n", "nope", "non")


async def send(user_id: str, text: str) -> None:
    """The bot's reply: into the demo's outbox (your messaging platform's send API)."""
    from .models import Message

    await Message.objects.acreate(user_id=user_id, from_bot=True, text=text)


async def handle_message(user_id: str, text: str) -> None:
    """One incoming message. Raises SessionLocked if the user's previous message is still
    being handled after a few seconds (the webhook answers 409: the platform retries)."""
    from .models import Message

    sessions = get_session_service()
    async with sessions.alock(user_id, timeout=10, blocking_timeout=5):
        await Message.objects.acreate(user_id=user_id, from_bot=False, text=text)
        session = await sessions.aget(user_id)  # None for a new user
        handler = HANDLERS.get(session.slug if session else "", catch_all)
        await handler(sessions, user_id, text.strip(), session)


Handler = Callable[[SessionService, str, str, Session | None], Awaitable[None]]


# -- handlers: what a message means in the user's current state -------------------------------


async def catch_all(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    """A new user, or a state that expects no answer (goodbye, an unknown state): start over."""
    await sessions.astep_to(user_id, flow="hello")  # says hello
    await sessions.astep_to(user_id, state="ask_name")  # asks the name, schedules the nudge


async def got_name(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    if text.lower() in ("hola", "hello", "hi"):
        # hello->say_hola redirects to hello->say_hello (flows.py): a greeting starts over
        await sessions.astep_to(user_id, slug="hello->say_hola")
        await sessions.astep_to(user_id, state="ask_name")
        return
    await send(user_id, f"Nice to meet you, {text[:40]}!")
    await sessions.astep_to(user_id, slug="hello->get_name")


async def wants_pizza(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    answer = text.lower()
    if answer in YES:
        await sessions.astep_to(user_id, flow="order")  # the branch: to the order flow...
    elif answer in NO:
        await sessions.astep_to(user_id, flow="goodbye")  # ...or straight to goodbye
    else:
        await send(user_id, "Please answer yes or no.")
        await sessions.astep_to(user_id, state="get_name")  # the same state: its action asks again


async def got_size(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    size = text.lower()
    if size not in SIZES:
        await send(user_id, "Sorry, we only have small, medium and large.")
        await sessions.astep_to(user_id, state="ask_size")
        return
    await send(user_id, f"A {size} one.")
    await sessions.aset_back_to(user_id, slug="order->ask_size")  # where "back" returns to
    await sessions.astep_to(user_id, state="ask_topping")


async def got_topping(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    topping = text.lower()
    if topping == "back":
        await sessions.astep_back(user_id)  # to order->ask_size, which asks the size again
    elif topping in TOPPINGS:
        await send(user_id, f"{topping.capitalize()}, good choice.")
        await sessions.astep_to(user_id, state="confirm")
    else:
        await send(user_id, "Sorry, that topping is not on the menu.")
        await sessions.astep_to(user_id, state="ask_topping")


async def confirmed(
    sessions: SessionService, user_id: str, text: str, session: Session | None
) -> None:
    if text.lower() in YES:
        await send(user_id, "Order placed: your pizza is on its way!")
    else:
        await send(user_id, "Order cancelled.")
    await sessions.astep_to(user_id, flow="goodbye")


HANDLERS: dict[str, Handler] = {
    "hello->ask_name": got_name,
    "follow_up->nudge": got_name,  # the nudge asks the name again
    "hello->get_name": wants_pizza,
    "order->ask_size": got_size,
    "order->ask_topping": got_topping,
    "order->confirm": confirmed,
}


# -- actions: what the bot says (and schedules) on entering a state ----------------------------


@on_enter("hello->say_hello")
async def say_hello(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Hello! I am the stealth-sessions demo bot.")


@on_enter("hello->ask_name")
async def ask_name(user_id: str, **kwargs: object) -> None:
    await send(user_id, "What is your name?")
    await get_session_service().astep_to_in(
        user_id,
        getattr(settings, "DEMO_NUDGE_AFTER", 24 * 3600),
        slug="follow_up->nudge",
        if_unchanged=True,  # dropped if the user answered (moved on) before it is due
    )


@on_enter("hello->get_name")
async def ask_pizza(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Would you like to order a pizza? (yes/no)")


@on_enter("order->ask_size")
async def ask_size(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Which size: small, medium or large?")


@on_enter("order->ask_topping")
async def ask_topping(user_id: str, **kwargs: object) -> None:
    await send(
        user_id, "Which topping: cheese, mushroom or pepperoni? (or 'back' to change the size)"
    )


@on_enter("order->confirm")
async def ask_confirmation(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Shall I place the order? (yes/no)")


@on_enter("follow_up->nudge")
async def nudge(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Still there? Tell me your name and we carry on.")


@on_enter("goodbye->say_bye")
async def say_bye(user_id: str, **kwargs: object) -> None:
    await send(user_id, "Goodbye! Send anything to start again.")
