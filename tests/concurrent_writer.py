"""Run by test_concurrency.py in several processes at once: random transitions on a few users,
printing each returned session as a JSON line."""

import json
import os
import random
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.conf import settings  # noqa: E402

settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "HISTORY_LENGTH": 100_000}

from stealth_sessions import signals  # noqa: E402
from stealth_sessions.exceptions import (  # noqa: E402
    InvalidStateTransition,
    NoBackToSession,
    SessionInterrupted,
)
from stealth_sessions.service import get_session_service  # noqa: E402

seed, ops, with_receiver = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if with_receiver:
    # A pre_transition receiver makes every write read first, then write conditionally.
    signals.pre_transition.connect(lambda sender, **kw: None, weak=False)
rng = random.Random(seed)
service = get_session_service()
users = ["u1", "u2", "whatsapp:+4477"]
slugs = ["hello->say_hello", "hello->ask_name", "hello->get_name", "goodbye->say_bye"]
for _ in range(ops):
    user = rng.choice(users)
    op = rng.random()
    try:
        if op < 0.4:
            method, s = "step_to", service.step_to(user, slug=rng.choice(slugs))
        elif op < 0.6:
            method, s = "update", service.update_session_to(user, slug=rng.choice(slugs))
        elif op < 0.7:
            method, s = "state", service.step_to(user, state="say_hello")
        elif op < 0.8:
            method, s = "flow", service.step_to(user, flow="follow_up")
        elif op < 0.9:
            method, s = "set_back_to", service.set_back_to(user, slug=rng.choice(slugs))
        else:
            method, s = "step_back", service.step_back(user)
    except (NoBackToSession, InvalidStateTransition):
        continue  # no back-to yet; state= alone in a flow without that state
    except SessionInterrupted:
        print(json.dumps([user, "interrupted", None, None]), flush=True)
        continue  # another process holds the user's lock (test_interrupts.py)
    print(json.dumps([s.user_id, method, s.slug, s.version]), flush=True)
