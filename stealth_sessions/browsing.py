"""Reading many sessions at once: counts per state and pages of sessions, served from the
shards' indexes (never a keyspace scan), exact (a user whose session expired is not counted
or listed, purged or not) and read-only (browsing never slides an expiry). A collaborator of
SessionService.

Two orders:
- without a user id prefix, newest activity first: each shard's index holds its users by
  slug, then newest activity first; a page merges the ranges of one slug, of a flow's slugs
  or of all, in each shard and then across shards;
- with ``user_id_prefix`` (or ``user_id_contains``): the user with exactly that id first,
  then the others whose id starts with it (contains it) found by a bounded walk of the
  shards' indexes (ZSCAN with a MATCH pattern), in user id order within a page. A page may
  then be shorter than ``limit`` and still have a next one (see PREFIX_SCAN_CALLS).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from .exceptions import InvalidCursor
from .keys import SHARDS
from .slugs import parse, slugify
from .store import IndexEntry, Listed, Plan, RedisStore, Stored, decode, inverted, now_ms
from .users import validate_user_id
from .values import ListedSession, Session, from_ms

# How many ZSCAN calls one page of a prefix search makes at most (each examines about
# SCAN_COUNT members, so each Redis call stays short): two a shard on a small deployment,
# and at 1,000,000 users a tenth of the walk.
PREFIX_SCAN_CALLS = 128
SCAN_COUNT = 1000


class Browsing:
    """The plans behind the service's count_by_state, browse and list_sessions (run by the
    service, sync or async), walk_state for bulk changes, and purge_expired."""

    def __init__(
        self,
        store: RedisStore,
        session: Callable[[str, Stored], Session],
        ttl_ms: int | None,
    ) -> None:
        self.store = store
        self._session = session
        self._ttl_ms = ttl_ms

    def plan_count_by_state(self) -> Plan[dict[str, int]]:
        """``{slug: number of users}``, expired sessions excluded."""
        return self.store.plan_count_by_state(self._ttl_ms)

    def purge_expired(self) -> int:
        """Drop the users whose session expired from the indexes, and their data, in bounded
        batches; returns how many. Run it periodically when SESSION_TTL is set (the sweep job
        and command do): counts and pages never include expired users, but their index
        entries take memory until purged."""
        return 0 if self._ttl_ms is None else self.store.purge_expired(self._ttl_ms)

    def plan_browse(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> Plan[tuple[list[ListedSession], str | None]]:
        """A page of sessions with their last activity and pending step counts, and the
        cursor of the next page (None on the last). ``user_id_contains``: as a prefix
        search, matching anywhere in the id (``+447700900015`` finds
        ``whatsapp:+447700900015``); not both."""
        if user_id_prefix and user_id_contains:
            raise TypeError("give user_id_prefix or user_id_contains, not both")
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        want_slug = want_flow = None
        if slug is not None:
            want_slug = slugify(*parse(slug))
            if flow is not None and parse(slug)[0] != flow:
                return [], None
        elif flow is not None:
            slugify(flow, "x")  # validates the flow name
            want_flow = flow
        if user_id_prefix or user_id_contains:
            term = validate_user_id(user_id_prefix or user_id_contains)
            return (
                yield from self._by_prefix(
                    term, want_slug, want_flow, cursor, limit, anywhere=bool(user_id_contains)
                )
            )
        after = None if cursor is None else _decode_cursor(cursor, "a")
        scope, name = ("slug", want_slug) if want_slug else ("flow", flow) if flow else ("all", "")
        entries = yield from self.store.plan_page_by_activity(
            scope, name or "", after, limit + 1, self._ttl_ms
        )
        page = yield from self._listed(entries[:limit], want_slug)
        if len(entries) <= limit:
            return page, None
        return page, _encode_cursor("a", entries[limit - 1].cursor)

    def walk_state(
        self, slug: str, cursor: str | None = None, limit: int = 500
    ) -> tuple[list[ListedSession], str | None]:
        return self.store.run(self.plan_walk_state(slug, cursor, limit))

    def plan_walk_state(
        self, slug: str, cursor: str | None = None, limit: int = 500
    ) -> Plan[tuple[list[ListedSession], str | None]]:
        """The users at ``slug``, shard by shard (not newest first): a page and the cursor to
        go on from (None: the walk is done). Each page is one bounded range read of one
        shard's index and one pipelined read of its users, whatever the state's size: the
        walk of bulk operations, which change users as they go. A page may be empty with a
        next cursor (a shard's range held only expired or moved users)."""
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        slug = slugify(*parse(slug))
        lo, hi = f"[{slug}|", f"({slug}}}"  # '}' follows '|'
        shard, after = 0, lo
        if cursor is not None:
            number, _, position = _decode_cursor(cursor, "s").partition(":")
            if not number.isdigit() or int(number) >= SHARDS:
                raise _invalid(cursor)
            shard, after = int(number), f"({slug}|{position}" if position else lo
        entries, resume = yield from self.store.plan_walk_index(shard, after, hi, limit)
        if self._ttl_ms is not None:
            cut = inverted(now_ms() - self._ttl_ms)
            entries = [e for e in entries if e.inv < cut]
        page = yield from self._listed(entries, slug)
        if resume is not None:
            position = resume.decode("utf-8", "replace").partition("|")[2]
            return page, _encode_cursor("s", f"{shard}:{position}")
        if shard + 1 < SHARDS:
            return page, _encode_cursor("s", f"{shard + 1}:")
        return page, None

    def plan_list_sessions(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        user_id_contains: str | None = None,
    ) -> Plan[tuple[list[Session], str | None]]:
        """``plan_browse()`` without the extras: a page of sessions and the next page's cursor."""
        page, next_cursor = yield from self.plan_browse(
            flow, slug, user_id_prefix, cursor, limit, user_id_contains=user_id_contains
        )
        return [listed.session for listed in page], next_cursor

    def _by_prefix(
        self,
        prefix: str,
        want_slug: str | None,
        want_flow: str | None,
        cursor: str | None,
        limit: int,
        *,
        anywhere: bool = False,
    ) -> Plan[tuple[list[ListedSession], str | None]]:
        """The exact id first (on the first page), then a walk of the shards' indexes from
        the cursor ``<shard>:<zscan cursor>:<matches of that batch already returned>``."""
        kind = "c" if anywhere else "u"
        if cursor is None:
            shard, zcursor, skip = 0, 0, 0
        else:
            try:
                shard, zcursor, skip = (int(x) for x in _decode_cursor(cursor, kind).split(":"))
            except ValueError:
                raise _invalid(cursor) from None

        exact: list[ListedSession] = []
        if cursor is None:
            row = yield from self.store.plan_row(prefix)
            if row is not None and _matches(decode(row.session.current), want_slug, want_flow):
                exact.append(self._row(row))
        found: list[IndexEntry] = []
        calls = PREFIX_SCAN_CALLS
        next_cursor = None
        while shard < SHARDS:
            batch, after = yield from self.store.plan_scan_user_ids(
                prefix, shard, zcursor, SCAN_COUNT, anywhere=anywhere
            )
            batch = [
                e for e in batch if e.user_id != prefix and _matches(e.slug, want_slug, want_flow)
            ][skip:]
            room = limit - len(exact) - len(found)
            if len(batch) > room:
                found += batch[:room]
                next_cursor = f"{shard}:{zcursor}:{skip + room}"
                break
            found += batch
            skip = 0
            shard, zcursor = (shard + 1, 0) if after == 0 else (shard, after)
            calls -= 1
            if calls == 0 and shard < SHARDS:
                next_cursor = f"{shard}:{zcursor}:0"
                break
        found.sort(key=lambda e: e.user_id.encode())
        page = exact + (yield from self._listed(found, want_slug))
        return page, None if next_cursor is None else _encode_cursor(kind, next_cursor)

    def _listed(
        self, entries: list[IndexEntry], want_slug: str | None
    ) -> Plan[list[ListedSession]]:
        rows = yield from self.store.plan_rows(entries)
        page = []
        for row in rows:
            if row is None or (want_slug is not None and row.session.current != want_slug.encode()):
                continue  # gone (expired, reset) or moved since the index was read
            page.append(self._row(row))
        return page

    def _row(self, row: Listed) -> ListedSession:
        ms = row.session.activity_ms
        return ListedSession(
            self._session(row.user_id, row.session),
            None if ms is None else from_ms(ms),
            row.pending_steps,
        )


def _matches(slug: str | None, want_slug: str | None, want_flow: str | None) -> bool:
    if want_slug is not None:
        return slug == want_slug
    return want_flow is None or (slug or "").startswith(want_flow + "->")


# A cursor is opaque to callers: base64url of "a:<inv>|<user id>" (by activity) or of
# "u:<shard>:<zscan cursor>:<skip>" (prefix search; "c:" for a search anywhere in the id), so
# it travels in a URL as is.


def _encode_cursor(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def _invalid(cursor: str) -> InvalidCursor:
    return InvalidCursor(
        f"Invalid cursor {cursor[:40]!r}: pass back a next_cursor from the same listing"
    )


def _decode_cursor(cursor: str, kind: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error):
        raise _invalid(cursor) from None
    head, _, position = raw.partition(":")
    if head != kind:
        raise _invalid(cursor)
    if kind == "a":
        inv, sep, user_id = position.partition("|")
        try:
            validate_user_id(user_id)
            valid = sep and len(inv) == 11 and int(inv, 16) >= 0 and inv == inv.lower()
        except ValueError:
            valid = False
        if not valid:
            raise _invalid(cursor)
    return position
