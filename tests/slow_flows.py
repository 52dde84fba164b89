"""tests/flows.py's flow map, with every transition slowed down: for a worker that the test
kills while it works (tests/test_bulk_jobs.py). Loaded as the FLOW_MAP, so the receiver is
connected in the worker process, as a bot's actions would be."""

import time

from stealth_sessions.signals import post_transition
from tests.flows import flow_map

__all__ = ["flow_map"]


def _slowly(sender, **kwargs):
    time.sleep(0.002)


post_transition.connect(_slowly, dispatch_uid="tests.slow_flows")
