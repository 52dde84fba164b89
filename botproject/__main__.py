"""``python -m botproject`` (or ``make demo``): the demo bot, ready to chat with.

Checks first that the port ($PORT, default 8000) is free, and stops there with a one-line
error if it is not (nothing started, nothing changed). Then uses the Redis named by
$REDIS_URL, or else starts a private one (never a Redis it was not told about, such as one that
happens to listen on 6379), migrates the demo database, (re)sets an admin login and a bot API
token and prints them, starts an RQ worker for scheduled steps, and serves the project on
http://127.0.0.1:$PORT/: the chat at /, the admin at /admin/, the API at /api/.

Ctrl-C (or SIGTERM) stops the web server, then the worker, then the private Redis. The worker
and the Redis run in sessions of their own, so the terminal's Ctrl-C reaches only this process,
which stops them in that order (a Redis stopped under a running worker makes it print
tracebacks).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from botproject.redis_server import RedisServer, is_answering

ROOT = Path(__file__).resolve().parent.parent


def check_port(value: str) -> int:
    """The port to serve on, or exit with a one-line error: before anything is started."""
    try:
        port = int(value)
        if not 0 < port < 65536:
            raise ValueError
    except ValueError:
        sys.exit(f"PORT={value!r} is not a port number (1-65535)")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            sys.exit(
                f"Port {port} on 127.0.0.1 is in use (another demo?): "
                f"run on another one with PORT={port + 1} make demo"
            )
    return port


def find_or_start_redis() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        server = RedisServer().start()
        print(f"Started a private redis-server at {server.url} (data not kept)")
        return server.url
    parsed = urlparse(url)
    if not is_answering(parsed.port or 6379, parsed.hostname or "127.0.0.1"):
        sys.exit(f"REDIS_URL={url} does not answer; unset REDIS_URL to use a private Redis")
    print(f"Using the Redis at {url} (REDIS_URL)")
    return url


def main() -> None:
    port = check_port(os.environ.get("PORT", "8000"))
    # A plain `kill` must still run the cleanups (worker, private redis-server).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ.setdefault("DEMO_NUDGE_AFTER", "60")  # re-engagement you can watch happen
    os.environ["REDIS_URL"] = find_or_start_redis()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "botproject.settings")
    (ROOT / "var").mkdir(exist_ok=True)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    password, token = ensure_demo_users()
    seeded = seed_conversations()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler"],
        cwd=ROOT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop it before its Redis
    )
    base = f"http://127.0.0.1:{port}"
    print(
        f"\n  Chat:   {base}/            each browser tab is a new user\n"
        f"  Admin:  {base}/admin/      login: admin / {password}\n"
        f"  API:    {base}/api/sessions/   header: Authorization: Token {token}\n"
        f"  Docs:   {base}/api/docs/\n"
        f"  Worker: an RQ worker runs scheduled steps: a user left at hello->ask_name is\n"
        f"          nudged (follow_up->nudge) after {os.environ['DEMO_NUDGE_AFTER']} s\n"
        f"  A bot:  .venv/bin/python examples/bot_client.py {base}/\n"
        + (f"  Seeded: {seeded} users mid-conversation, in the admin\n" if seeded else "")
        + "  Stop:   Ctrl-C\n",
        flush=True,
    )
    try:
        # insecure_serving: the chat's static files are served even with DJANGO_DEBUG=0.
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, insecure_serving=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop(worker)
        print("Demo stopped.", flush=True)


def stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM: RQ's warm shutdown (the current job ends, the scheduler stops)."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def seed_conversations() -> int:
    """Users in the middle of conversations, so the admin has something to show: only when
    there are no sessions yet. Moved through the service like any bot would (origin "demo")."""
    from stealth_sessions.service import get_session_service, origin

    service = get_session_service()
    if service.count_by_state():
        return 0
    paths = [
        ["hello->say_hello"],
        ["hello->say_hello", "hello->ask_name"],
        ["hello->say_hello", "hello->ask_name", "hello->get_name"],
        ["order->ask_size"],
        ["order->ask_size", "order->ask_topping"],
        ["order->ask_size", "order->ask_topping", "order->confirm"],
        ["hello->say_hello", "goodbye->say_bye"],
    ]
    users = [f"whatsapp:+4477009{i:05d}" for i in range(18)] + [
        f"psid-{7_000_000_000 + 7919 * i}" for i in range(17)
    ]
    with origin("demo"):
        for i, user in enumerate(users):
            # update_session_to: no bot actions, but for one user per path, whose
            # step_to runs them (hello->ask_name schedules a re-engagement step).
            move = service.step_to if i < len(paths) else service.update_session_to
            for slug in paths[i % len(paths)]:
                move(user, slug=slug)
            if i % 5 == 0:
                service.set_back_to(user, slug="hello->say_hello")
    return len(users)


def ensure_demo_users() -> tuple[str, str]:
    """An admin with a fresh password, and a bot user allowed to use the sessions API."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    password = secrets.token_urlsafe(9)
    admin, _ = User.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    admin.set_password(password)
    admin.save()
    bot, _ = User.objects.get_or_create(username="demo-bot")
    bot.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="stealth_sessions",
            codename__in=["view_session", "change_session"],
        )
    )
    token, _ = Token.objects.get_or_create(user=bot)
    return password, token.key


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C while starting: the atexit cleanups still run
        print("\nDemo stopped.", file=sys.stderr)
        sys.exit(130)
