"""Background bulk changes: "reset everyone at a state" and "move everyone at a state" as a
resumable job run by the task engine (the one scheduled steps use), for states too large to
change inside a web request. A collaborator of SessionService (``service.jobs``).

A job's record is one Redis hash (store: ``bulk_job:<id>``): what to do, the counters, the
walk's cursor and the batch in flight. The job walks the state's users in batches with
``browse(slug=...)``, applies each with the same per-user call as the in-request bulk change
(conditional on the version it listed, so a user who moved meanwhile is skipped, never
changed twice), and after each batch saves the counters and the cursor in one write. Every
Redis call stays bounded: one page of ``BATCH`` users, then one script per user.

One run at a time: a run holds the job's **lease** (``bulk_job_lease:<id>``, taken with
``SET NX PX``, expiring after ``STEALTH_SESSIONS['BULK_JOB_LEASE']`` seconds, renewed after
each batch and every third of that within one). A run that cannot take it (a duplicate
delivery, a Resume while the job runs) returns at once, changing nothing; a run that finds
it lost (it stalled longer than the lease) stops without saving. Unfinished jobs are listed
in one sorted set (``bulk_jobs``; finished ones leave it): the periodic sweep hands to the
engine again each one whose lease has expired, so a worker killed part-way loses nothing.
The next run goes on from the last saved cursor; the users of the interrupted batch who were
already changed have left the state, so the walk does not meet them again (they are counted
as done).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import uuid4

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from . import metrics
from .conf import conf
from .context import origin
from .exceptions import (
    InvalidStateTransition,
    SessionConflict,
    SessionInterrupted,
    SessionStoreUnavailable,
)
from .slugs import parse
from .store import Lease, RedisStore
from .values import Session, from_ms, to_ms

if TYPE_CHECKING:
    from .service import SessionService

TASK = "stealth_sessions.scheduling.jobs.run_bulk_job"
RESET, MOVE = "reset_state", "move_state"
QUEUED, RUNNING, DONE, CANCELLED, STOPPED = "queued", "running", "done", "cancelled", "stopped"
BUSY = "busy"
"""What ``run()`` returns when another run of the job holds its lease: it did nothing."""
# Users a batch: one page read (bounded), then one script per user; progress saved after it.
BATCH = 200
# How long a finished job's record stays readable (its page in the admin).
JOB_TTL = 7 * 24 * 3600
# Jobs one sweep hands to the engine again, at most (each sweep call stays bounded).
SWEEP_LIMIT = 100


class _LeaseLost(Exception):
    """The run's lease expired and another run may hold it now: stop, write nothing more."""


@dataclass(frozen=True)
class BulkJob:
    """A background bulk change and its progress. ``total``: users at the state when it was
    started (users arriving later are not changed); ``skipped``: moved, reset or gone before
    their turn; ``failed``: a receiver or action raised for them (``error``: the last);
    ``running``: a run holds its lease now."""

    id: str
    kind: str
    slug: str
    target: str | None
    run_action: bool
    status: str
    total: int
    done: int
    skipped: int
    failed: int
    cancel_requested: bool
    error: str
    created: datetime
    updated: datetime
    started_by: str
    running: bool = False

    @property
    def finished(self) -> bool:
        return self.status in (DONE, CANCELLED)

    @property
    def stale(self) -> bool:
        """Not finished and nobody runs it: stopped, or no run holds its lease and it saved
        no progress for the lease's duration (its worker died; the sweep hands it over
        again)."""
        if self.finished or self.running:
            return False
        idle = (timezone.now() - self.updated).total_seconds()
        return self.status == STOPPED or idle > conf.BULK_JOB_LEASE

    @property
    def processed(self) -> int:
        return self.done + self.skipped + self.failed


class BulkJobs:
    """start, get, cancel, resume, run (what the engine's task calls) and sweep."""

    def __init__(self, service: SessionService, store: RedisStore) -> None:
        self.service = service
        self.store = store

    @property
    def available(self) -> bool:
        """Whether a task engine that runs bulk jobs is configured."""
        scheduler = self.service.scheduler
        return scheduler is not None and scheduler.runs_tasks

    def start(
        self,
        kind: str,
        slug: str,
        target: str | None = None,
        *,
        run_action: bool = False,
        started_by: str = "",
    ) -> BulkJob:
        """Record a job changing everyone at ``slug`` (``kind``: "reset_state", or
        "move_state" to ``target``) and hand it to the engine. Refused, before anything is
        written, as the in-request bulk change would refuse it."""
        if not self.available:
            raise ImproperlyConfigured(
                "Background bulk changes need a task engine that runs tasks: set "
                "STEALTH_SESSIONS['SCHEDULER'] (default: the RQ one)"
            )
        parse(slug)
        if kind == MOVE:
            target = self.service._checked(target or "")
            if target == slug:
                raise InvalidStateTransition(f"Users at {slug!r} are already there")
        elif kind != RESET:
            raise ValueError(f"Unknown bulk job kind {kind!r}")
        job_id = uuid4().hex
        now = str(to_ms(timezone.now()))
        self.store.save_bulk_job(
            job_id,
            {
                "kind": kind,
                "slug": slug,
                "target": target or "",
                "run_action": int(run_action),
                "status": QUEUED,
                "total": self.service.count_by_state().get(slug, 0),
                "done": 0,
                "skipped": 0,
                "failed": 0,
                "cancel": 0,
                "error": "",
                "cursor": "",
                "batch": "",
                "created": now,
                "updated": now,
                "started_by": started_by,
            },
            JOB_TTL,
            active=True,
        )
        self._enqueue(job_id)
        return self.get(job_id)  # type: ignore[return-value]

    def get(self, job_id: str) -> BulkJob | None:
        record = self.store.bulk_job(job_id) if job_id.isalnum() else None
        if record is None:
            return None
        return BulkJob(
            id=job_id,
            kind=record["kind"],
            slug=record["slug"],
            target=record["target"] or None,
            run_action=record["run_action"] == "1",
            status=record["status"],
            total=int(record["total"]),
            done=int(record["done"]),
            skipped=int(record["skipped"]),
            failed=int(record["failed"]),
            cancel_requested=record["cancel"] == "1",
            error=record["error"],
            created=from_ms(int(record["created"])),
            updated=from_ms(int(record["updated"])),
            started_by=record["started_by"],
            running=self.store.bulk_job_leased(job_id),
        )

    def cancel(self, job_id: str) -> bool:
        """Ask the job to stop before its next batch; False if it has finished."""
        job = self.get(job_id)
        if job is None or job.finished:
            return False
        self._save(job_id, cancel=1)
        if job.stale:  # nobody runs it: stop it now
            self._save(job_id, status=CANCELLED, active=False)
        return True

    def resume(self, job_id: str) -> bool:
        """Hand a job whose worker died (or that stopped on an error) to the engine again now,
        without waiting for the sweep; it goes on from its last saved batch. False if it has
        finished or a run holds its lease."""
        job = self.get(job_id)
        if job is None or job.finished or job.running:
            return False
        self._save(job_id, status=QUEUED, error="", active=True)
        self._enqueue(job_id)
        return True

    def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Hand to the engine again up to ``limit`` unfinished jobs that no run holds and that
        saved no progress for the lease's duration (their worker died, or the engine lost
        them); returns how many. Each is looked at again only after another lease duration.
        Called by the periodic sweep (stealth_sessions.scheduling.jobs.sweep)."""
        if not self.available:
            return 0
        idle_ms = int(conf.BULK_JOB_LEASE * 1000)
        claimed = self.store.claim_idle_bulk_jobs(idle_ms, limit)
        for job_id in claimed:
            self._enqueue(job_id)
        return len(claimed)

    def run(self, job_id: str) -> str:
        """Run the job to its end (or until cancelled); returns its status. Returns BUSY at
        once, doing nothing, when another run holds the job's lease. Safe to call again after
        a kill: it goes on from the last saved batch."""
        lease_s = float(conf.BULK_JOB_LEASE)
        with self.store.bulk_job_lease(job_id, int(lease_s * 1000)) as lease:
            if lease is None:
                return BUSY
            try:
                return self._run(job_id, _Keeper(lease, lease_s / 3))
            except _LeaseLost:
                return BUSY

    # -- internals -----------------------------------------------------------------------

    def _run(self, job_id: str, keeper: _Keeper) -> str:
        record = self.store.bulk_job(job_id)
        if record is None or record["status"] in (DONE, CANCELLED):
            if record is not None:  # finished, but a crash kept it listed
                self.store.save_bulk_job(job_id, {}, JOB_TTL, active=False)
            return "gone" if record is None else record["status"]
        counts = {name: int(record[name]) for name in ("done", "skipped", "failed")}
        slug, error = record["slug"], record["error"]
        apply = self._apply(record)
        if record["batch"]:
            # Killed part-way through a batch: who of it was changed has left the state.
            for user_id, version in json.loads(record["batch"]):
                session = self.service.peek(user_id)
                if session is None or session.version != version:
                    counts["done"] += 1
        keeper.renew()
        self._save(job_id, status=RUNNING, batch="", active=True, **counts)
        cursor = record["cursor"] or None
        try:
            while True:
                latest = self.store.bulk_job(job_id)
                if latest is None:
                    return "gone"  # expired, or deleted by hand
                if latest["cancel"] == "1":
                    keeper.renew()
                    self._save(job_id, status=CANCELLED, active=False)
                    return CANCELLED
                page, next_cursor = self.service.browsing.walk_state(slug, cursor, BATCH)
                batch = [[row.session.user_id, row.session.version] for row in page]
                keeper.renew()
                self._save(job_id, batch=json.dumps(batch))
                with origin("admin"):
                    for row in page:
                        keeper.renew_when_due()
                        try:
                            apply(row.session)
                        except (SessionConflict, SessionInterrupted):
                            # Moved meanwhile, or busy (locked): left as they are.
                            counts["skipped"] += 1
                        except SessionStoreUnavailable:
                            raise
                        except Exception as exc:
                            counts["failed"] += 1
                            error = f"{row.session.user_id}: {type(exc).__name__}: {exc}"
                        else:
                            counts["done"] += 1
                cursor = next_cursor
                status = RUNNING if cursor is not None else DONE
                keeper.renew()
                # One HSET: the counters, the cursor and "no batch in flight" go together.
                self._save(
                    job_id,
                    status=status,
                    cursor=cursor or "",
                    batch="",
                    error=error,
                    active=cursor is not None,
                    **counts,
                )
                if cursor is None:
                    return DONE
        except _LeaseLost:
            raise
        except SessionStoreUnavailable as exc:
            metrics.store_unavailable("bulk")
            # Still listed: the sweep takes it up again once the store is back.
            self._stopped(job_id, exc, active=True)
            raise
        except Exception as exc:
            # Likely to fail again the same way: it waits for an operator's Resume.
            self._stopped(job_id, exc, active=False)
            raise

    def _apply(self, record: dict[str, str]) -> Callable[[Session], object]:
        service = self.service
        if record["kind"] == RESET:
            return lambda s: service.reset(s.user_id, expected_version=s.version)
        move = service.step_to if record["run_action"] == "1" else service.update_session_to
        target = record["target"]
        return lambda s: move(s.user_id, slug=target, expected_version=s.version)

    def _stopped(self, job_id: str, exc: BaseException, *, active: bool) -> None:
        # If the store is down, the job stays "running" until the sweep hands it over again.
        with suppress(SessionStoreUnavailable):
            self._save(
                job_id,
                status=STOPPED,
                error=f"Stopped: {type(exc).__name__}: {exc}",
                active=active,
            )

    def _save(self, job_id: str, *, active: bool | None = None, **fields: str | int) -> None:
        fields["updated"] = str(to_ms(timezone.now()))
        self.store.save_bulk_job(job_id, fields, JOB_TTL, active=active)

    def _enqueue(self, job_id: str) -> None:
        self.service.scheduler.enqueue_task(TASK, job_id)  # type: ignore[union-attr]


class _Keeper:
    """Renews a run's lease: before each write of the job's record, and every ``every``
    seconds within a batch (a batch whose actions are slow must not lose it)."""

    def __init__(self, lease: Lease, every: float) -> None:
        self.lease = lease
        self.every = every
        self.due = time.monotonic() + every

    def renew(self) -> None:
        if not self.lease.renew():
            raise _LeaseLost
        self.due = time.monotonic() + self.every

    def renew_when_due(self) -> None:
        if time.monotonic() >= self.due:
            self.renew()
