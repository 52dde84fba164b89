"""Signals sent by SessionService (``sender=SessionService``). Their kwargs are public API.

pre_transition   user_id, source, target, method, run_action, data
                 sent after validation, before the write; a receiver raising aborts it
post_transition  user_id, source, target, method, run_action, session, data
                 sent after the write; receivers' exceptions propagate (the write stays)
session_reset    user_id, session (the one removed)
step_scheduled   user_id, step (a ScheduledStep); sent after it was stored
scheduled_step_cancelled
                 user_id, step (the ScheduledStep removed); by cancel_scheduled() and reset()

A scheduled step firing sends pre_transition/post_transition like step_to, with
method="step_to_in" or "step_to_at", run_action=True and data, the dict given to
step_to_in/step_to_at (None when none was given, and for every other transition).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    ``slug`` with ``run_action=True`` (Stealth running the state's action)::

        @on_enter("hello->say_hello")
        def say_hello(user_id, session, **kwargs): ...
    """
    parse(slug)

    def register(func: Action) -> Action:
        if not _actions:
            # Connected on first use: a post_transition with no receivers costs nothing.
            post_transition.connect(_run_actions, dispatch_uid="stealth_sessions.on_enter")
        _actions.setdefault(slug, []).append(func)
        return func

    return register


def registered_actions() -> dict[str, list[Action]]:
    return {slug: list(funcs) for slug, funcs in _actions.items()}


def _run_actions(sender: Any, *, target: str, run_action: bool, **kwargs: Any) -> None:
    kwargs.pop("signal", None)
    if run_action:
        for action in _actions.get(target, ()):
            action(target=target, run_action=run_action, **kwargs)
