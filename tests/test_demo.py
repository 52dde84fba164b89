"""The demo launcher (`make demo`), as a newcomer meets it: a busy port stops it before it
changes anything; the URLs it prints answer; the bot answers an external client; Ctrl-C stops
the web server, the RQ worker and the private Redis without a traceback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from botproject.redis_server import free_port, is_answering

from .demo_process import ROOT, demo_env, start_demo

pytestmark = pytest.mark.slow


def test_a_busy_port_stops_the_demo_before_it_starts_or_changes_anything(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "botproject"],
            cwd=ROOT,
            env=demo_env(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stdout == ""  # no banner, no password, no "Started a private redis-server"
    assert result.stderr.strip().splitlines() == [
        f"Port {port} on 127.0.0.1 is in use (another demo?): "
        f"run on another one with PORT={port + 1} make demo"
    ]
    assert not (tmp_path / "demo.sqlite3").exists()  # not migrated, no password reset
    assert time.monotonic() - started < 10  # nothing started, nothing to wait for


def test_a_port_that_is_not_a_number_is_one_line_too(tmp_path: Path) -> None:
    env = demo_env(tmp_path, 0) | {"PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "botproject"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "PORT='eighty' is not a port number (1-65535)"


def test_the_demo_serves_what_it_prints_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    try:
        banner = demo.stdout.read_text()
        urls = sorted(set(re.findall(r"http://127\.0\.0\.1:\d+/\S*", banner)))
        assert len(urls) == 4  # chat (the client's base too), admin, API, docs
        for url in urls:
            request = urllib.request.Request(url, headers={"Authorization": f"Token {demo.token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200, url

        client = subprocess.run(
            [sys.executable, "examples/bot_client.py", demo.base + "/", "client-test"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
        assert "  < What is your name?" in client.stdout
        assert client.stdout.splitlines()[-1] == (
            "Done: 8 messages, 6 states visited, now at goodbye->say_bye"
        )
        request = urllib.request.Request(
            demo.base + "/api/sessions/client-test/",
            headers={"Authorization": f"Token {demo.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["slug"] == "goodbye->say_bye"

        children = subprocess.run(
            ["pgrep", "-P", str(demo.process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children  # the RQ worker
        assert demo.interrupt() == 0
    finally:
        demo.stop()
    stderr = demo.stderr.read_text()
    assert "Traceback" not in stderr
    assert demo.stdout.read_text().rstrip().endswith("Demo stopped.")
    assert not is_answering(demo.redis_port)  # the private Redis is gone
    for pid in children:  # and the worker with it
        assert not Path(f"/proc/{pid}").exists(), pid


def test_importing_the_test_settings_starts_no_process() -> None:
    """mypy (django-stubs) and `make lint` import tests/settings.py: no redis-server may be
    left behind. The servers are the pytest plugin's (tests/redis_plugin.py)."""
    code = (
        "import os, pathlib, tests.settings\n"
        "me = str(os.getpid())\n"
        "stats = [p / 'stat' for p in pathlib.Path('/proc').glob('[0-9]*')]\n"
        "ppids = [s.read_text().rsplit(')', 1)[-1].split()[1] for s in stats if s.exists()]\n"
        "print(ppids.count(me))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEALTH_TEST_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
