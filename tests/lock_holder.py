"""Run by test_interrupts.py in another process: takes user u1's lock, says "locked", waits
for a line on stdin, then steps u1 to the slug given as argument inside the lock and prints
the version it wrote."""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from stealth_sessions.service import get_session_service  # noqa: E402

service = get_session_service()
with service.lock("u1", timeout=30):
    print("locked", os.getpid(), flush=True)
    sys.stdin.readline()
    print(service.step_to("u1", slug=sys.argv[1]).version, flush=True)
