"""Signals sent by SessionService (``sender=SessionService``). Their kwargs are public API.

pre_transition   user_id, source, target, method, run_action, data
                 sent after validation, before the write; a receiver raising aborts it
post_transition  user_id, source, target, method, run_action, session, data
                 sent after the write; receivers' exceptions propagate (the write stays);
                 then the target's @on_enter actions run (run_action=True)
session_reset    user_id, session (the one removed)
step_scheduled   user_id, step (a ScheduledStep); sent after it was stored
scheduled_step_cancelled
                 user_id, step (the ScheduledStep removed); by cancel_scheduled() and reset()

The async service (``astep_to``...) sends them with ``Signal.asend``: async receivers are
awaited on the event loop, sync ones run in a thread, as Django provides.

A scheduled step firing sends pre_transition/post_transition like step_to, with
method="step_to_in" or "step_to_at", run_action=True and data, the dict given to
step_to_in/step_to_at (None when none was given, and for every other transition).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.dispatch import Signal

from .slugs import parse

pre_transition = Signal(use_caching=True)
post_transition = Signal(use_caching=True)
session_reset = Signal(use_caching=True)
step_scheduled = Signal(use_caching=True)
scheduled_step_cancelled = Signal(use_caching=True)

Action = Callable[..., Any]
_actions: dict[str, list[Action]] = {}


def on_enter(slug: str) -> Callable[[Action], Action]:
    """Run the decorated function, with the post_transition kwargs, each time a user enters
    ``slug`` with ``run_action=True`` (Stealth running the state's action), after the
    post_transition receivers::

        @on_enter("hello->say_hello")
        def say_hello(user_id, session, **kwargs): ...

    An ``async def`` action is awaited by the async service (``astep_to``...), on the event
    loop; reached from a synchronous transition (``step_to``, a scheduled step run by a sync
    worker) it is run to completion with asgiref's ``async_to_sync`` (which refuses, with
    its RuntimeError, when called from a thread running an event loop: use the async
    service there). A sync action reached from an async transition runs in a thread
    (``sync_to_async``), as Django runs sync signal receivers."""
    parse(slug)

    def register(func: Action) -> Action:
        _actions.setdefault(slug, []).append(func)
        return func

    return register


def registered_actions() -> dict[str, list[Action]]:
    return {slug: list(funcs) for slug, funcs in _actions.items()}


def has_actions(slug: str) -> bool:
    return slug in _actions


def run_actions(kwargs: dict[str, Any]) -> None:
    """Run the actions of ``kwargs["target"]`` (the post_transition kwargs), in a sync
    transition."""
    for action in list(_actions.get(kwargs["target"], ())):
        if iscoroutinefunction(action):
            async_to_sync(action)(**kwargs)
        else:
            action(**kwargs)


async def arun_actions(kwargs: dict[str, Any]) -> None:
    """Run the actions of ``kwargs["target"]``, in an async transition."""
    for action in list(_actions.get(kwargs["target"], ())):
        if iscoroutinefunction(action):
            await action(**kwargs)
        else:
            await sync_to_async(action)(**kwargs)
