"""``python -m botproject`` (the demo launcher, what `make demo` runs) in a subprocess, for the
tests that check the demo as a person would use it. It starts its own private Redis (REDIS_URL
is removed from its environment) and uses a database file of the test's own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from botproject.redis_server import free_port, is_answering

ROOT = Path(__file__).resolve().parent.parent


def demo_env(tmp_path: Path, port: int, nudge_after: int = 60) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="botproject.settings",
        PORT=str(port),
        DEMO_DB=str(tmp_path / "demo.sqlite3"),
        DEMO_NUDGE_AFTER=str(nudge_after),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    base: str
    password: str
    token: str
    redis_port: int
    stdout: Path
    stderr: Path

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a terminal sends it to the launcher; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """For a test's ``finally``: Ctrl-C, so that the launcher stops its worker and Redis
        (a SIGKILL would leave them running, in their own sessions); SIGKILL if it hangs."""
        if self.process.poll() is None:
            try:
                self.interrupt()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_demo(tmp_path: Path, nudge_after: int = 60, timeout: float = 60) -> Demo:
    port = free_port()
    stdout, stderr = tmp_path / "demo.out", tmp_path / "demo.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "botproject"],
            cwd=ROOT,
            env=demo_env(tmp_path, port, nudge_after),
            stdout=out,
            stderr=err,
        )
    deadline = time.monotonic() + timeout
    while "Stop:" not in stdout.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the demo did not start:\n{stderr.read_text()[-3000:]}")
        time.sleep(0.1)
    text = stdout.read_text()
    base = f"http://127.0.0.1:{port}"
    while True:  # the banner is printed just before the server binds its port
        try:
            urllib.request.urlopen(base + "/", timeout=10).close()
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # not up, or slow
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    redis_port = int(re.search(r"redis://127\.0\.0\.1:(\d+)/0", text)[1])  # type: ignore[index]
    assert is_answering(redis_port)
    return Demo(
        process,
        base,
        password=re.search(r"login: admin / (\S+)", text)[1],  # type: ignore[index]
        token=re.search(r"Authorization: Token (\S+)", text)[1],  # type: ignore[index]
        redis_port=redis_port,
        stdout=stdout,
        stderr=stderr,
    )
