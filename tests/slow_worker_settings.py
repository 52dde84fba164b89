"""tests/settings.py for a worker whose every transition takes a few milliseconds more."""

from tests.settings import *  # noqa: F403

STEALTH_SESSIONS = {**STEALTH_SESSIONS, "FLOW_MAP": "tests.slow_flows.flow_map"}  # noqa: F405
