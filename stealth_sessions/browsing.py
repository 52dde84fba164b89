"""Reading many sessions at once: counts per state and pages of sessions, served from the
indexes (never a keyspace scan), exact (expired sessions are purged from the indexes first)
and read-only (browsing never slides an expiry). Mixed into SessionService.

Two orders:
- without a user id prefix, newest activity first: each slug's index scores its users by the
  time they entered it, and a page merges the indexes of one slug, of a flow's slugs or of all;
- with ``user_id_prefix``, by user id (so an exact match comes first), from the user index,
  which a flow or slug filter then narrows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from .exceptions import InvalidCursor
from .slugs import parse, slugify
from .store import WRITTEN, RedisStore, Row, decode
from .users import validate_user_id
from .values import ListedSession, Session, from_ms

# How many users one page of a prefix search examines at most: a filter that matches few of
# the users with that prefix returns a short page and a cursor, instead of reading them all.
PREFIX_SCAN_BUDGET = 2000


class Browsing:
    """Mixed into SessionService: count_by_state, browse and list_sessions."""

    store: RedisStore

    if TYPE_CHECKING:  # provided by SessionService
        _session: Callable[[str, Row], Session]

    def count_by_state(self) -> dict[str, int]:
        """``{slug: number of users}``, expired sessions excluded."""
        return self.store.count_by_state()

    def browse(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[ListedSession], str | None]:
        """A page of sessions with their last activity and pending step counts, and the
        cursor of the next page (None on the last). Newest activity first; by user id when
        ``user_id_prefix`` is given. A page may be shorter than ``limit`` and still have a
        next one when a filter narrows a prefix search (see PREFIX_SCAN_BUDGET)."""
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise ValueError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        want_slug = want_flow = ""
        if slug is not None:
            want_slug = slugify(*parse(slug))
            if flow is not None and parse(slug)[0] != flow:
                return [], None
        elif flow is not None:
            want_flow = flow
            slugify(flow, "x")  # validates the flow name
        after = None if cursor is None else _decode_cursor(cursor, bool(user_id_prefix))

        if user_id_prefix:
            validate_user_id(user_id_prefix)
            lo = "[" + user_id_prefix
            if after is not None and after[1] >= user_id_prefix:
                lo = "(" + after[1]
            hi = b"[" + user_id_prefix.encode() + b"\xff"
            rows, resume = self.store.list_by_user_id(
                lo, hi, limit, want_slug, want_flow, PREFIX_SCAN_BUDGET
            )
            page = [self._listed(row) for row in rows[:limit]]
            if len(rows) > limit:
                resume = page[-1].session.user_id
            return page, None if resume is None else _encode_cursor("u", resume)

        scope, name = ("slug", want_slug) if slug else ("flow", flow) if flow else ("all", "")
        rows = self.store.list_by_activity(scope, name or "", after, limit)
        page = [self._listed(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return page, None
        last = rows[limit - 1]
        return page, _encode_cursor(str(int(last[6])), page[-1].session.user_id)

    def list_sessions(
        self,
        flow: str | None = None,
        slug: str | None = None,
        user_id_prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[Session], str | None]:
        """``browse()`` without the extras: a page of sessions and the next page's cursor."""
        page, next_cursor = self.browse(flow, slug, user_id_prefix, cursor, limit)
        return [listed.session for listed in page], next_cursor

    def _listed(self, row: Row) -> ListedSession:
        user_id = decode(row[0])
        # None: not in its slug's index (a slug set by hand, not yet picked up by a get);
        # 0: indexed by an earlier build, which kept no times.
        ms = 0 if row[6] is None else int(row[6])
        return ListedSession(
            self._session(user_id, [WRITTEN, *row[1:6]]),  # type: ignore[arg-type]
            from_ms(ms) if ms > 0 else None,
            int(row[7]),
        )


# A cursor is opaque to callers: base64url of "<activity ms>:<user id>" (by activity) or of
# "u:<user id>" (by user id), so it travels in a URL as is.


def _encode_cursor(head: str, user_id: str) -> str:
    return base64.urlsafe_b64encode(f"{head}:{user_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, by_user_id: bool) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        head, _, user_id = raw.partition(":")
        validate_user_id(user_id)
        if by_user_id != (head == "u"):
            raise ValueError(head)
        # isdigit() alone admits "²", which int() refuses.
        score = 0 if head == "u" else int(head) if head.isascii() and head.isdigit() else -1
        if score < 0:
            raise ValueError(head)
    except (ValueError, binascii.Error):
        raise InvalidCursor(
            f"Invalid cursor {cursor[:40]!r}: pass back a next_cursor from the same listing"
        ) from None
    return score, user_id
