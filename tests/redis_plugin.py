"""The Redis servers of a test run: a pytest plugin (``-p tests.redis_plugin`` in pyproject's
``addopts``), so that they are up before pytest-django imports tests/settings.py, which only
reads the environment this sets. The tests' subprocesses (RQ workers, concurrent writers)
inherit it.

- Single Redis (the default): a private redis-server on a free port, exported as
  ``STEALTH_TEST_REDIS_URL``; RQ uses it too.
- ``STEALTH_TEST_CLUSTER=1``: a private 3-master Redis Cluster (``STEALTH_TEST_REDIS_CLUSTER_URLS``,
  comma-separated node URLs) and, because RQ does not support Redis Cluster, a private
  redis-server for RQ (``STEALTH_TEST_RQ_URL``).

A URL set beforehand names a Redis of yours, and none is started for it. Then nothing is
flushed: tests/conftest.py deletes only this run's keys (prefix ``STEALTH_TEST_KEY_PREFIX``)
and RQ's ``rq:*``. ``STEALTH_TEST_REDIS_PRIVATE=1`` says every server was started here, so
flushing is safe. The servers keep nothing on disk and stop when the run ends.
"""

from __future__ import annotations

import os
import uuid

import pytest

from botproject.redis_server import RedisCluster, RedisServer


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    options = parser.parse_known_args(args)
    if options.help or options.version:
        return
    start_servers()


def start_servers() -> None:
    """Start what the environment does not name; export it all (see the module docstring)."""
    os.environ.setdefault("STEALTH_TEST_KEY_PREFIX", f"t{uuid.uuid4().hex[:8]}")
    if os.environ.get("STEALTH_TEST_CLUSTER") == "1":
        wanted = {
            "STEALTH_TEST_REDIS_CLUSTER_URLS": lambda: ",".join(RedisCluster().start().urls),
            "STEALTH_TEST_RQ_URL": lambda: RedisServer().start().url,
        }
    else:
        wanted = {"STEALTH_TEST_REDIS_URL": lambda: RedisServer().start().url}
    named = [name for name in wanted if os.environ.get(name)]
    for name, start in wanted.items():
        if name not in named:
            os.environ[name] = start()
    if named:
        os.environ.pop("STEALTH_TEST_REDIS_PRIVATE", None)
    else:
        os.environ["STEALTH_TEST_REDIS_PRIVATE"] = "1"
