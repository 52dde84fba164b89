"""``python -m botproject`` (or ``make demo``): the demo bot, ready to click through.

Finds a Redis ($REDIS_URL, else 127.0.0.1:6379) or starts a private one, migrates the demo
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
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parsed = urlparse(url)
    if is_answering(parsed.port or 6379, parsed.hostname or "127.0.0.1"):
        print(f"Using the Redis at {url}")
        return url
    server = RedisServer().start()
    print(f"No Redis at {url}: started a private redis-server at {server.url} (data not kept)")
    return server.url


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
        f"  A bot:  .venv/bin/python examples/bot_client.py http://127.0.0.1:{port}/api/ {token}\n",
        flush=True,
    )
    try:
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)
    finally:
        worker.terminate()


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
