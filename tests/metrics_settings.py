"""tests/settings.py with the Prometheus metrics on: for worker subprocesses."""

from tests.settings import *  # noqa: F403

STEALTH_SESSIONS = {**STEALTH_SESSIONS, "METRICS": True}  # noqa: F405
