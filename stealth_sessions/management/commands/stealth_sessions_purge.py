"""``manage.py stealth_sessions_purge [--every S]``: drop expired users from the indexes.
Kept for one release; ``manage.py stealth_sessions purge`` does the same."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...service import get_session_service


class Command(BaseCommand):
    help = (
        "With SESSION_TTL set: drop the users whose session expired from the indexes, with "
        "their data, in bounded batches. Once, or every --every seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, help="repeat every so many seconds")

    def handle(self, *args: Any, every: float | None, **options: Any) -> None:
        while True:
            purged = get_session_service().purge_expired()
            if purged or options["verbosity"] > 1:
                self.stdout.write(f"Purged {purged} expired session(s).")
            if not every:
                return
            time.sleep(every)
