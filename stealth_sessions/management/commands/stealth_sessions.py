"""``manage.py stealth_sessions <subcommand>``: the operators' command, a thin adapter over the
session service (``get_session_service()``): show, stats, reset, reset-state, move-state,
export, import, import-stealth, check, purge, sweep. See the README, "The stealth_sessions
command".

Every subcommand that walks many users shows a progress bar on a terminal (tqdm, on stderr;
plain lines otherwise; none with ``--no-progress``), stops between two users on Ctrl-C and
says how far it got (exit 130), and answers bad input and an unreachable Redis with one line
(a CommandError) and a non-zero exit.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from ...conf import conf
from ...context import origin
from ...exceptions import SessionConflict, SessionStoreUnavailable, StealthSessionsError
from ...service import SessionService, get_session_service
from ...slugs import parse, slugify
from ...store import StealthSource
from ...transfer import BATCH, MalformedRecord, Transfer
from ...users import validate_user_id

PLAIN_EVERY = 10_000
"""Without a terminal, a progress line every so many users."""
INTERRUPTED = 130


class Interrupted(Exception):
    pass


class Progress:
    """A progress bar (tqdm) on a terminal, plain lines otherwise, or nothing."""

    def __init__(self, out: OutputWrapper, what: str, total: int | None, mode: str) -> None:
        self.out, self.what, self.total, self.mode = out, what, total, mode
        self.done = 0
        self._next_line = PLAIN_EVERY
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" users", desc=what, file=_Raw(out), leave=False)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self.done >= self._next_line:
            self._next_line = (self.done // PLAIN_EVERY + 1) * PLAIN_EVERY
            of = "" if self.total is None else f" of {self.total}"
            self.out.write(f"{self.what}: {self.done}{of} users")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Raw:
    """A stream for tqdm over an OutputWrapper (which would end each write with a newline)."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class Command(BaseCommand):
    help = "Operate the chatbot sessions: show, stats, reset, export, import, check, purge..."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        def add(name: str, help: str, walks: bool = False) -> CommandParser:
            p = sub.add_parser(name, help=help, description=help)
            if walks:
                p.add_argument(
                    "--no-progress", action="store_true", help="no progress bar or lines"
                )
            return p

        p = add("show", "One user's session, expiry, version, lock, pending steps and history.")
        p.add_argument("user_id")
        p = add("stats", "Users per flow and state, total users, pending and overdue steps.")
        p.add_argument("--json", action="store_true", help="as one JSON object")
        p = add("reset", "Reset users (session, history; their steps are cancelled).", True)
        p.add_argument("user_ids", nargs="+", metavar="USER_ID")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p = add("reset-state", "Reset every user at a state.", True)
        p.add_argument("slug")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p = add("move-state", "Move every user at a state to another (update_session_to).", True)
        p.add_argument("slug")
        p.add_argument("target")
        p.add_argument("--run-action", action="store_true", help="step_to: run the target's action")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p = add("export", "Export users as JSON Lines, one user a line.", True)
        p.add_argument("-o", "--output", help="file to write (default: standard output)")
        scope = p.add_mutually_exclusive_group()
        scope.add_argument("--slug", help="only the users at this slug")
        scope.add_argument("--flow", help="only the users in this flow")
        p = add("import", "Restore users from an export; those already here are skipped.", True)
        p.add_argument("file")
        p.add_argument("--replace", action="store_true", help="overwrite users already here")
        p = add("import-stealth", "Import the sessions of a live Stealth bot's Redis.", True)
        p.add_argument("--from", dest="source", required=True, metavar="REDIS_URL")
        p.add_argument("--dry-run", action="store_true", help="count, write nothing")
        p.add_argument(
            "--delete-source", action="store_true", help="delete the imported users' keys there"
        )
        add("check", "Find users at undeclared or redirecting states, steps to gone states.", True)
        p = add("purge", "Drop the users whose session expired from the indexes.")
        p.add_argument("--every", type=float, help="repeat every so many seconds")
        p = add(
            "sweep",
            "Hand overdue scheduled steps, and bulk jobs whose worker died, to the engine again.",
        )
        p.add_argument("--grace", type=float, help="seconds past due (default: STEP_SWEEP_GRACE)")
        p.add_argument("--every", type=float, help="repeat every so many seconds")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        self.options = options
        self.interrupted = False
        try:
            with origin("cli"), self._deferred_interrupt():
                service = get_session_service()
                getattr(self, "do_" + subcommand.replace("-", "_"))(service, **options)
        except Interrupted as exc:
            raise CommandError(str(exc), returncode=INTERRUPTED) from None
        except SessionStoreUnavailable as exc:
            raise CommandError(f"Redis is unavailable: {exc}") from None
        except StealthSessionsError as exc:
            raise CommandError(str(exc)) from None

    # -- subcommands -------------------------------------------------------------------------

    def do_show(self, service: SessionService, user_id: str, **options: Any) -> None:
        session = service.peek(user_id)
        steps = service.scheduled_steps(user_id)
        if session is None and not steps:
            raise CommandError(f"User {user_id!r} has no session")
        write = self.stdout.write
        write(f"user:       {user_id}")
        if session is None:
            write("session:    (none)")
        else:
            write(f"session:    {session.slug}")
            write(f"previous:   {session.previous or '(none)'}")
            write(f"back-to:    {session.back_to or '(none)'}")
            write(f"expires in: {'never' if session.ttl is None else f'{session.ttl} s'}")
            write(f"version:    {session.version}")
        lock = service.current_lock(user_id)
        if lock is None:
            write("lock:       free")
        else:
            write(f"lock:       held by {lock.holder} until {lock.until.isoformat()}")
        write(f"pending steps: {len(steps)}")
        for step in steps:
            extra = ", if unchanged" if step.if_unchanged else ""
            if step.data is not None:
                extra += f", data {json.dumps(step.data)}"
            write(f"  {step.due.isoformat()}  -> {step.target}  ({step.method}{extra}) {step.id}")
        history = service.history(user_id, limit=service.history_length)
        write(f"history ({len(history)}, newest first):")
        for t in history:
            write(
                f"  {t.at.isoformat(timespec='milliseconds')}  {t.method:<17} {t.origin:<9} "
                f"{t.source or '(none)'} -> {t.target}"
            )

    def do_stats(self, service: SessionService, json: bool, **options: Any) -> None:
        counts = service.count_by_state()
        flows: dict[str, dict[str, int]] = {}
        for slug, n in sorted(counts.items()):
            flow, _, state = slug.partition("->")
            flows.setdefault(flow, {})[state or slug] = n
        stats = {
            "total_users": sum(counts.values()),
            "flows": flows,
            "pending_steps": service.transfer.pending_steps_count(),
            "overdue_steps": service.transfer.overdue_steps(),
        }
        if json:
            self.stdout.write(_json(stats, indent=2))
            return
        for flow, states in flows.items():
            self.stdout.write(f"{flow}: {sum(states.values())}")
            for state, n in states.items():
                self.stdout.write(f"  {state}: {n}")
        self.stdout.write(f"total users: {stats['total_users']}")
        self.stdout.write(f"pending steps: {stats['pending_steps']}")
        self.stdout.write(f"overdue steps: {stats['overdue_steps']}")

    def do_reset(self, service: SessionService, user_ids: list[str], **options: Any) -> None:
        for user_id in user_ids:  # every id checked before any write
            validate_user_id(user_id)
        self._confirm(f"Reset {len(user_ids)} user(s)?")
        changed = skipped = 0
        with self._progress("reset", len(user_ids)) as progress:
            for user_id in user_ids:
                self._stop_if_interrupted(changed + skipped, len(user_ids))
                if service.reset(user_id):
                    changed += 1
                else:
                    skipped += 1
                progress.update(1)
        self.stdout.write(f"Reset {changed} user(s); skipped {skipped} (no session).")

    def do_reset_state(self, service: SessionService, slug: str, **options: Any) -> None:
        parse(slug)
        total = service.count_by_state().get(slug, 0)
        self._confirm(f"Reset the {total} user(s) at {slug}?")

        def reset(user_id: str, version: int) -> None:
            service.reset(user_id, expected_version=version)

        changed, skipped = self._each_at(service, slug, total, "reset-state", reset)
        self.stdout.write(
            f"Reset {changed} user(s) at {slug}; skipped {skipped} (moved meanwhile)."
        )

    def do_move_state(
        self, service: SessionService, slug: str, target: str, run_action: bool, **options: Any
    ) -> None:
        parse(slug)
        target = service._checked(target)
        if target == slug:
            raise CommandError(f"Users at {slug!r} are already there")
        total = service.count_by_state().get(slug, 0)
        how = "step_to, running its action" if run_action else "update_session_to"
        self._confirm(f"Move the {total} user(s) at {slug} to {target} ({how})?")
        move = service.step_to if run_action else service.update_session_to

        def one(user_id: str, version: int) -> None:
            move(user_id, slug=target, expected_version=version)

        changed, skipped = self._each_at(service, slug, total, "move-state", one)
        self.stdout.write(
            f"Moved {changed} user(s) from {slug} to {target}; skipped {skipped} (moved meanwhile)."
        )

    def do_export(
        self,
        service: SessionService,
        output: str | None,
        slug: str | None,
        flow: str | None,
        **options: Any,
    ) -> None:
        if slug is not None:
            slugify(*parse(slug))
        elif flow is not None:
            slugify(flow, "x")
        counts = service.count_by_state()
        total = sum(
            n
            for s, n in counts.items()
            if (slug is None or s == slug) and (flow is None or s.startswith(flow + "->"))
        )
        try:
            out: IO[str] = sys.stdout if output in (None, "-") else open(output, "w")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from None
        stream = self.stdout if out is sys.stdout else None
        exported = 0
        try:
            with self._progress("export", total) as progress:
                for page in service.transfer.export(flow=flow, slug=slug):
                    lines = "".join(_json(record) + "\n" for record in page)
                    if stream is not None:
                        stream.write(lines, ending="")
                    else:
                        out.write(lines)
                    exported += len(page)
                    progress.update(len(page))
                    self._stop_if_interrupted(exported, total)
        finally:
            if out is not sys.stdout:
                out.close()
        if out is not sys.stdout:
            self.stderr.write(f"Exported {exported} user(s) to {output}.")

    def do_import(self, service: SessionService, file: str, replace: bool, **options: Any) -> None:
        transfer = service.transfer
        total = 0
        for _n, _user in self._records(transfer, file):  # all lines checked before any write
            total += 1
        written = skipped = 0
        with self._progress("import", total) as progress:
            batch = []
            for _n, user in self._records(transfer, file):
                batch.append(user)
                if len(batch) == BATCH:
                    done = transfer.import_records(batch, replace=replace)
                    written, skipped = written + sum(done), skipped + done.count(False)
                    progress.update(len(batch))
                    batch = []
                    self._stop_if_interrupted(written + skipped, total)
            if batch:
                done = transfer.import_records(batch, replace=replace)
                written, skipped = written + sum(done), skipped + done.count(False)
                progress.update(len(batch))
        why = "expired, or already here" if replace else "already here, or expired"
        self.stdout.write(f"Imported {written} user(s); skipped {skipped} ({why}).")

    def do_import_stealth(
        self,
        service: SessionService,
        source: str,
        dry_run: bool,
        delete_source: bool,
        **options: Any,
    ) -> None:
        stealth = StealthSource.from_url(source)
        imported = present = ignored = deleted = 0
        with self._progress("import-stealth", None) as progress:
            for batch in service.transfer.import_stealth(
                stealth, dry_run=dry_run, delete_source=delete_source
            ):
                imported += batch.imported
                present += batch.present
                ignored += batch.ignored
                deleted += batch.deleted
                progress.update(batch.imported + batch.present)
                if not batch.done:
                    self._stop_if_interrupted(imported + present, None)
        verb = "Would import" if dry_run else "Imported"
        self.stdout.write(
            f"{verb} {imported} user(s); {present} already had a session here (skipped); "
            f"{ignored} key(s) left alone (not a session slug)"
            + (f"; deleted {deleted} user(s) from the source." if delete_source else ".")
        )

    def do_check(self, service: SessionService, **options: Any) -> None:
        flow_map = service.flow_map
        if flow_map is None:
            self.stdout.write("No FLOW_MAP configured: nothing to check.")
            return
        problems = 0
        for slug, n in sorted(service.count_by_state().items()):
            if slug not in flow_map:
                problems += 1
                flow = slug.partition("->")[0]
                target = (
                    slugify(flow, flow_map.initial_state(flow))
                    if flow in flow_map.flows()
                    else "TARGET"
                )
                self.stdout.write(
                    f"{n} user(s) at {slug}, which is not in the flow map; fix: "
                    f"manage.py stealth_sessions move-state {slug} {target}"
                )
            else:
                landing = flow_map.landing(slug)
                if landing != slug:
                    problems += 1
                    self.stdout.write(
                        f"{n} user(s) at {slug}, which redirects to {landing}; fix: "
                        f"manage.py stealth_sessions move-state {slug} {landing}"
                    )
        total = service.transfer.pending_steps_count()
        with self._progress("check steps", total) as progress:
            for steps in service.transfer.pending_steps():
                for step in steps:
                    if flow_map.landing(step.target) is None:
                        problems += 1
                        self.stdout.write(
                            f"Step {step.id} of user {step.user_id} targets {step.target}, "
                            "which is not in the flow map (it will fail when due)"
                        )
                progress.update(len(steps))
                self._stop_if_interrupted(progress.done, total)
        if problems:
            raise CommandError(f"check found {problems} problem(s)")
        self.stdout.write("No problems found.")

    def do_purge(self, service: SessionService, every: float | None, **options: Any) -> None:
        while True:
            purged = service.purge_expired()
            self.stdout.write(f"Purged {purged} expired session(s).")
            if not every:
                return
            self._sleep(every)

    def do_sweep(
        self, service: SessionService, grace: float | None, every: float | None, **options: Any
    ) -> None:
        while True:
            handed = service.sweep_scheduled(conf.STEP_SWEEP_GRACE if grace is None else grace)
            self.stdout.write(f"Handed {handed} overdue scheduled step(s) to the engine.")
            jobs = service.jobs.sweep()
            if jobs:
                self.stdout.write(f"Handed {jobs} interrupted bulk job(s) to the engine.")
            if not every:
                return
            self._sleep(every)

    # -- helpers -----------------------------------------------------------------------------

    def _each_at(
        self,
        service: SessionService,
        slug: str,
        total: int,
        what: str,
        apply: Callable[[str, int], None],
    ) -> tuple[int, int]:
        """Apply to each user at ``slug`` (the service's bulk semantics: a user who moved
        since the page was read is skipped, by their version); stops between users."""
        changed = skipped = 0
        cursor = None
        with self._progress(what, total) as progress:
            while True:
                page, cursor = service.browsing.walk_state(slug, cursor, BATCH)
                for listed in page:
                    self._stop_if_interrupted(changed + skipped, total, changed)
                    try:
                        apply(listed.session.user_id, listed.session.version)
                        changed += 1
                    except SessionConflict:
                        skipped += 1
                    progress.update(1)
                if cursor is None:
                    return changed, skipped

    def _records(self, transfer: Transfer, file: str) -> Iterator[tuple[int, Any]]:
        try:
            f = open(file, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        with f:
            try:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            yield n, transfer.parse_record(line)
                        except MalformedRecord as exc:
                            raise CommandError(f"{file}, line {n}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise CommandError(f"{file} is not UTF-8 text: {exc}") from None

    def _confirm(self, question: str) -> None:
        if self.options.get("yes"):
            return
        if not sys.stdin.isatty():
            raise CommandError(f"{question} Not confirmed: pass --yes (no terminal to ask on)")
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("Cancelled: nothing changed")

    @contextmanager
    def _progress(self, what: str, total: int | None) -> Iterator[Progress]:
        if self.options.get("no_progress"):
            mode = "none"
        elif self.stderr.isatty():
            mode = "bar"
        else:
            mode = "lines"
        progress = Progress(self.stderr, what, total, mode)
        try:
            yield progress
        finally:
            progress.close()

    @contextmanager
    def _deferred_interrupt(self) -> Iterator[None]:
        """Ctrl-C sets a flag the loops look at between two users, so no user is left half
        written (outside the main thread, as under some test runners, Ctrl-C stays as is)."""

        def handler(signum: int, frame: object) -> None:
            self.interrupted = True

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _stop_if_interrupted(
        self, done: int, total: int | None, changed: int | None = None
    ) -> None:
        if self.interrupted:
            of = "" if total is None else f" of {total}"
            also = "" if changed is None else f" ({changed} changed)"
            raise Interrupted(f"Interrupted after {done}{of} users{also}")

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.interrupted:
                raise Interrupted("Interrupted")
            time.sleep(min(0.2, end - time.monotonic()))


def _json(value: Any, indent: int | None = None) -> str:
    separators = None if indent else (",", ":")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)


__all__: Sequence[str] = ["Command"]
