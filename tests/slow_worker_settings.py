"""tests/settings.py for a worker whose every transition takes a few milliseconds more, and
whose bulk job leases last LEASE seconds (so a test waits seconds, not a minute, for the
lease of a worker it killed to expire)."""

from tests.settings import *  # noqa: F403

LEASE = 2
STEALTH_SESSIONS = {
    **STEALTH_SESSIONS,  # noqa: F405
    "FLOW_MAP": "tests.slow_flows.flow_map",
    "BULK_JOB_LEASE": LEASE,
}
