"""``manage.py stealth_sessions_sweep [--grace S] [--every S]``: recover lost step jobs (and
bulk jobs whose worker died).
Kept for one release; ``manage.py stealth_sessions sweep`` does the same."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...conf import conf
from ...service import get_session_service


class Command(BaseCommand):
    help = (
        "Hand to the task engine again the scheduled steps overdue by more than the grace "
        "period (their job was lost). Once, or every --every seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace", type=float, help="seconds past due (default: STEP_SWEEP_GRACE)"
        )
        parser.add_argument("--every", type=float, help="repeat every so many seconds")

    def handle(self, *args: Any, grace: float | None, every: float | None, **options: Any) -> None:
        while True:
            service = get_session_service()
            handed = service.sweep_scheduled(conf.STEP_SWEEP_GRACE if grace is None else grace)
            if handed or options["verbosity"] > 1:
                self.stdout.write(f"Handed {handed} overdue scheduled step(s) to the engine.")
            jobs = service.jobs.sweep()
            if jobs:
                self.stdout.write(f"Handed {jobs} interrupted bulk job(s) to the engine.")
            if not every:
                return
            time.sleep(every)
