"""``python -m botproject`` (or ``make demo``): the demo bot, ready to click through.

Uses the Redis named by $REDIS_URL, or else starts a private one (never a Redis it was not
told about, such as one that happens to listen on 6379), migrates the demo
database, (re)sets an admin login and a bot API token and prints them, starts an RQ worker for
scheduled steps, then serves the project on http://127.0.0.1:$PORT/ (default 8000).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from botproject.redis_server import RedisServer, is_answering

ROOT = Path(__file__).resolve().parent.parent


def find_or_start_redis() -> str:
    url = os.environ.get("REDIS_URL")
    if url is None:
        server = RedisServer().start()
        print(f"Started a private redis-server at {server.url} (data not kept)")
        return server.url
    parsed = urlparse(url)
    if not is_answering(parsed.port or 6379, parsed.hostname or "127.0.0.1"):
        sys.exit(f"REDIS_URL={url} does not answer; unset REDIS_URL to use a private Redis")
    print(f"Using the Redis at {url}")
    return url


def main() -> None:
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
    port = os.environ.get("PORT", "8000")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler"], cwd=ROOT
    )
    print(
        f"\n  Admin:  http://127.0.0.1:{port}/admin/   login: admin / {password}\n"
        f"  API:    http://127.0.0.1:{port}/api/      header: Authorization: Token {token}\n"
        f"  Docs:   http://127.0.0.1:{port}/api/docs/\n"
        f"  Worker: an RQ worker runs scheduled steps: a user left at hello->ask_name is\n"
        f"          nudged (follow_up->nudge) after {os.environ['DEMO_NUDGE_AFTER']} s\n"
        f"  A bot:  .venv/bin/python examples/bot_client.py http://127.0.0.1:{port}/api/ {token}\n"
        + (f"  Seeded: {seeded} users mid-conversation, in the admin\n" if seeded else ""),
        flush=True,
    )
    try:
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
    finally:
        worker.terminate()


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
    main()
