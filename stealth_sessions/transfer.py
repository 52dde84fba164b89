"""Moving sessions in and out: export to JSON Lines records, import of them, import from a
live Stealth bot's Redis, and the walks of every user and pending step the operators' command
needs. A collaborator of SessionService (``service.transfer``).

An exported user is one JSON object (keys in this order)::

    {"user_id": "u1", "slug": "hello->ask_name", "previous": "hello->say_hello",
     "back_to": null, "version": 3, "last_activity_ms": 1767225600000,
     "expires_in_ms": null,
     "history": [{"at_ms": ..., "method": "step_to", "origin": "code",
                  "source": "hello->say_hello", "target": "hello->ask_name"}, ...],
     "steps": [{"id": "<32 hex>", "target": ..., "due_ms": ..., "created_ms": ...,
                "if_unchanged": false, "method": "step_to_in", "source": ...}, ...]}

History newest first; steps soonest first. Importing writes each user whole in one script
(lua/restore.lua): the same version, last activity and history, so exporting again gives the
same bytes, the remaining expiry aside. No signal is sent and no action runs: a restore is not
a transition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import current_origin
from .exceptions import InvalidSlug, InvalidUserId, StealthSessionsError
from .keys import SHARDS
from .slugs import parse, slugify
from .store import (
    Entry,
    Exported,
    HistoryCodes,
    Restored,
    StealthSource,
    decode,
    inverted,
    now_ms,
)
from .users import validate_user_id
from .values import ScheduledStep, to_ms

if TYPE_CHECKING:
    from .service import SessionService

BATCH = 1000
"""Users a page of an export reads, and an import writes, in one round trip each (a bounded
range of a shard's index, then one script a user, pipelined)."""
STEALTH_SCAN_COUNT = 500
_STEP_ID = re.compile(r"[0-9a-f]{32}")


class MalformedRecord(StealthSessionsError, ValueError):
    """An import line that is not an exported user; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class StealthProgress:
    """One batch of an import from Stealth: users ``imported``, ``present`` (a session here
    already: skipped), keys ``ignored`` (not a session slug, or an unusable user id), source
    users ``deleted`` (``delete_source``), and whether the SCAN is ``done``."""

    imported: int
    present: int
    ignored: int
    deleted: int
    done: bool


class Transfer:
    """export, import_records, import_stealth, and walks of users and pending steps."""

    def __init__(self, service: SessionService) -> None:
        self.service = service
        self.store = service.store

    # -- export ------------------------------------------------------------------------------

    def export(
        self, flow: str | None = None, slug: str | None = None, batch: int = BATCH
    ) -> Iterator[list[dict[str, Any]]]:
        """Every user (or a flow's, or a slug's) as export records, a batch of up to ``batch``
        at a time: shard by shard, in each by slug then newest activity (so an import keeps
        the order, and exporting again gives the same bytes). Each batch is one bounded range
        read of a shard's index and one pipelined script a user (plus, now and then, a read
        of the shard's history codes not met before)."""
        if slug is not None:
            slug = slugify(*parse(slug))
            lo, hi = f"[{slug}|", f"({slug}}}"
        elif flow is not None:
            slugify(flow, "x")  # validates the flow name
            lo, hi = f"[{flow}->", f"({flow}-?"  # '?' follows '>'
        else:
            lo, hi = "-", "+"
        ttl_ms = None if self.service.ttl is None else self.service.ttl * 1000
        limit = self.service.history_length
        for shard in range(SHARDS):
            codes: HistoryCodes = {}
            after: bytes | str | None = lo
            while after is not None:
                entries, after = self.store.walk_index(shard, after, hi, batch)
                cut = None if ttl_ms is None else inverted(now_ms() - ttl_ms)
                live = [e for e in entries if cut is None or e.inv < cut]
                users = self.store.exported(shard, live, limit, codes) if live else []
                if users:
                    yield self._records(users, ttl_ms)

    def _records(self, users: Sequence[Exported], ttl_ms: int | None) -> list[dict[str, Any]]:
        now = now_ms()
        out = []
        for user in users:
            s = user.session
            activity = s.activity_ms
            expires = None if ttl_ms is None or activity is None else activity + ttl_ms - now
            steps = (
                self.service.scheduled.from_records(user.user_id, user.steps) if user.steps else []
            )
            out.append(
                {
                    "user_id": user.user_id,
                    "slug": s.current.decode("utf-8", "replace"),
                    "previous": decode(s.previous),
                    "back_to": decode(s.back_to),
                    "version": s.version,
                    "last_activity_ms": activity,
                    "expires_in_ms": expires,
                    "history": [_entry_record(e) for e in user.entries],
                    "steps": [_step_record(step) for step in steps],
                }
            )
        return out

    # -- import ------------------------------------------------------------------------------

    def parse_record(self, line: str | bytes) -> Restored:
        """An export line as a user to restore; MalformedRecord saying what is wrong."""
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise MalformedRecord(f"not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise MalformedRecord("not a JSON object")
        try:
            user_id = validate_user_id(record.get("user_id"))
            slug = slugify(*parse(record.get("slug")))
            previous = _optional_str(record, "previous")
            back_to = _optional_str(record, "back_to")
            version = _int(record, "version")
            activity = record.get("last_activity_ms")
            activity = now_ms() if activity is None else _int(record, "last_activity_ms")
            expires = record.get("expires_in_ms")
            if expires is not None:
                expires = _int(record, "expires_in_ms", minimum=None)
            entries = tuple(_entry(e) for e in _list(record, "history"))
            steps = tuple(_step(s) for s in _list(record, "steps"))
        except (InvalidSlug, InvalidUserId) as exc:
            raise MalformedRecord(str(exc)) from None
        return Restored(
            user_id, slug, previous, back_to, version, activity, expires, entries, steps
        )

    def import_records(self, users: Sequence[Restored], *, replace: bool = False) -> list[bool]:
        """Restore ``users`` (each atomically); a user with a session is skipped unless
        ``replace``. Returns, for each, whether it was written. With SESSION_TTL set a user
        gets the exported remaining expiry (SESSION_TTL when none was exported; one whose
        expiry ran out is skipped); without it, no expiry. Their pending steps are handed to
        the scheduler, if one is configured (else they wait for it, stored)."""
        now = now_ms()
        ttl_ms = None if self.service.ttl is None else self.service.ttl * 1000
        ready, written = [], [False] * len(users)
        for i, user in enumerate(users):
            ttl = None if ttl_ms is None else ttl_ms if user.ttl_ms is None else user.ttl_ms
            if ttl is not None and ttl <= 0:
                continue  # expired since the export
            steps = tuple((sid, record, max(record["due"], now)) for sid, record, _ in user.steps)
            ready.append((i, _replace(user, ttl, steps)))
        results = self.store.restore(
            [user for _, user in ready],
            replace=replace,
            history_length=self.service.history_length,
        )
        for (i, user), done in zip(ready, results):
            written[i] = done
            if done and self.service.scheduler is not None:
                for step_id, record, _ in user.steps:
                    step = self.service.scheduled.from_records(user.user_id, {step_id: record})[0]
                    self.service.scheduled._hand_off(step)
        return written

    # -- import from Stealth -----------------------------------------------------------------

    def import_stealth(
        self,
        source: StealthSource,
        *,
        dry_run: bool = False,
        delete_source: bool = False,
        count: int = STEALTH_SCAN_COUNT,
    ) -> Iterator[StealthProgress]:
        """Import every user of a Stealth bot's Redis, a SCAN batch at a time (each yielded
        once written): a session whose slug, previous and back-to are the bot's, version 1,
        one history entry (method ``import``, the current origin, from the previous slug). No
        action runs and no signal is sent. A user with a session here already is skipped, so
        running it again imports nothing new. The expiry: with SESSION_TTL set, the source
        key's remaining one (SESSION_TTL if it has none); without, none. ``dry_run`` writes
        nothing; ``delete_source`` deletes the source keys of the users imported (if the bot
        has not moved them since)."""
        ttl_ms = None if self.service.ttl is None else self.service.ttl * 1000
        cursor = 0
        while True:
            batch = source.scan(cursor, count, _is_slug)
            now = now_ms()
            users, ignored = [], batch.ignored
            for found in batch.users:
                try:
                    validate_user_id(found.user_id)
                except InvalidUserId:
                    ignored += 1
                    continue
                ttl = None if ttl_ms is None else found.ttl_ms or ttl_ms
                # The activity the expiry implies, so listings leave the user out when it ends.
                activity = now if ttl is None or ttl_ms is None else now + ttl - ttl_ms
                entry = Entry(now, "import", current_origin(), found.previous, found.slug)
                users.append(
                    Restored(
                        found.user_id,
                        found.slug,
                        found.previous,
                        found.back_to,
                        1,
                        activity,
                        ttl,
                        (entry,),
                    )
                )
            cursor = batch.cursor
            if dry_run:
                here = self.store.present([u.user_id for u in users]) if users else []
                yield StealthProgress(here.count(False), sum(here), ignored, 0, cursor == 0)
            else:
                written = self.store.restore(
                    users, replace=False, history_length=self.service.history_length
                )
                done = [(u.user_id, u.slug) for u, w in zip(users, written) if w]
                deleted = source.delete(done) if delete_source and done else 0
                yield StealthProgress(
                    len(done), len(users) - len(done), ignored, deleted, cursor == 0
                )
            if cursor == 0:
                return

    # -- walks -------------------------------------------------------------------------------

    def pending_steps(self, count: int = 1000) -> Iterator[list[ScheduledStep]]:
        """Every pending step, a ZSCAN batch of a shard's sweep index at a time."""
        for shard in range(SHARDS):
            cursor = 0
            while True:
                pairs, cursor = self.store.scan_steps(shard, cursor, count)
                records = self.store.steps_of(pairs) if pairs else []
                steps = [
                    self.service.scheduled.from_records(user_id, {step_id: record})[0]
                    for (user_id, step_id), record in zip(pairs, records)
                    if record is not None
                ]
                if steps:
                    yield steps
                if cursor == 0:
                    break

    def overdue_steps(self) -> int:
        """How many pending steps are past due."""
        return self.store.overdue_steps_count(now_ms())

    def pending_steps_count(self) -> int:
        return self.store.pending_steps_count()


# -- records -------------------------------------------------------------------------------


def _is_slug(value: str) -> bool:
    try:
        parse(value)
    except InvalidSlug:
        return False
    return True


def _entry_record(e: Entry) -> dict[str, Any]:
    return {
        "at_ms": e.at_ms,
        "method": e.method,
        "origin": e.origin,
        "source": e.source,
        "target": e.target,
    }


def _step_record(step: ScheduledStep) -> dict[str, Any]:
    return {
        "id": step.id,
        "target": step.target,
        "due_ms": to_ms(step.due),
        "created_ms": to_ms(step.created),
        "if_unchanged": step.if_unchanged,
        "method": step.method,
        "source": step.source,
    }


def _replace(
    user: Restored, ttl: int | None, steps: tuple[tuple[str, dict[str, Any], int], ...]
) -> Restored:
    return Restored(
        user.user_id,
        user.slug,
        user.previous,
        user.back_to,
        user.version,
        user.activity_ms,
        ttl,
        user.entries,
        steps,
    )


def _int(record: dict[str, Any], name: str, minimum: int | None = 0) -> int:
    value = record.get(name)
    if type(value) is not int or (minimum is not None and value < minimum):
        raise MalformedRecord(f"{name!r} must be an integer >= 0, not {value!r}")
    return value


def _optional_str(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and (not isinstance(value, str) or not value or "\n" in value):
        raise MalformedRecord(f"{name!r} must be a slug or null, not {value!r}")
    return value


def _list(record: dict[str, Any], name: str) -> list[Any]:
    value = record.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedRecord(f"{name!r} must be a list of objects")
    return value


def _str(record: dict[str, Any], name: str, what: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{what}: {name!r} must be a non-empty string, not {value!r}")
    return value


def _entry(e: dict[str, Any]) -> Entry:
    source = e.get("source")
    if source is not None and not isinstance(source, str):
        raise MalformedRecord(f"history entry: 'source' must be a string or null, not {source!r}")
    return Entry(
        _int(e, "at_ms"),
        _str(e, "method", "history entry"),
        _str(e, "origin", "history entry"),
        source,
        _str(e, "target", "history entry"),
    )


def _step(s: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    step_id = s.get("id")
    if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
        raise MalformedRecord(f"step: 'id' must be 32 hex digits, not {step_id!r}")
    target = _str(s, "target", "step")
    try:
        parse(target)
    except InvalidSlug as exc:
        raise MalformedRecord(f"step {step_id}: {exc}") from None
    source = s.get("source")
    if source is not None and not isinstance(source, str):
        raise MalformedRecord(f"step {step_id}: 'source' must be a string or null")
    if not isinstance(s.get("if_unchanged"), bool):
        raise MalformedRecord(f"step {step_id}: 'if_unchanged' must be true or false")
    due = _int(s, "due_ms")
    record = {
        "target": target,
        "due": due,
        "created": _int(s, "created_ms"),
        "if_unchanged": s["if_unchanged"],
        "method": _str(s, "method", "step"),
        "source": source or False,
    }
    return step_id, record, due
