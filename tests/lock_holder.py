"""Run by test_interrupts.py in another process.

``lock_holder <slug>``: takes user u1's lock, says "locked <pid>", waits for a line on stdin,
then steps u1 to ``slug`` inside the lock and prints the version it wrote.
``lock_holder --burst <n>``: says "ready", waits for a line on stdin, then takes u1's lock
and, inside it, moves u1 ``n`` times (origin "owner"), while other processes try to write."""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.conf import settings  # noqa: E402

settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "HISTORY_LENGTH": 100_000}

from stealth_sessions.context import origin  # noqa: E402
from stealth_sessions.service import get_session_service  # noqa: E402

service = get_session_service()
if sys.argv[1] == "--burst":
    print("ready", flush=True)
    sys.stdin.readline()
    slugs = ["follow_up->wait", "goodbye->old_bye"]  # states the other writers never use
    with service.lock("u1", timeout=60), origin("owner"):
        for i in range(int(sys.argv[2])):
            service.step_to("u1", slug=slugs[i % 2])
    print("done", flush=True)
else:
    with service.lock("u1", timeout=30):
        print("locked", os.getpid(), flush=True)
        sys.stdin.readline()
        print(service.step_to("u1", slug=sys.argv[1]).version, flush=True)
