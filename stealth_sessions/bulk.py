"""Operations on many users at once, for operators (the admin's bulk actions): each user is
one ordinary, atomic service call, so history, signals and scheduled-step cancelling are those
of a single change. A collaborator of SessionService."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .exceptions import (
    BulkOperationFailed,
    InvalidStateTransition,
    SessionConflict,
    SessionInterrupted,
    StealthSessionsError,
)
from .slugs import parse
from .users import validate_user_id
from .values import BulkOutcome, Session

if TYPE_CHECKING:
    from .service import SessionService

# Users read per page while walking a state's index (one shard's range at a time).
BATCH = 500


class BulkOperations:
    """reset_many, reset_state and move_state, made of the service's own calls."""

    def __init__(self, service: SessionService) -> None:
        self.service = service

    def reset_many(self, user_ids: Iterable[str]) -> BulkOutcome:
        """Reset each of ``user_ids``; those without a session, or locked by another owner,
        count as skipped."""
        ids = [validate_user_id(user_id) for user_id in user_ids]  # all checked before any write
        changed: list[str] = []
        for user_id in ids:
            try:
                if self.service.reset(user_id):
                    changed.append(user_id)
            except SessionInterrupted:
                continue  # busy (another owner holds their lock): skipped
            except Exception as exc:
                skipped = ids.index(user_id) - len(changed)
                if self._changed_anyway(user_id, None):
                    changed.append(user_id)
                outcome = BulkOutcome(tuple(changed), skipped)
                raise BulkOperationFailed(outcome, user_id, exc) from exc
        return BulkOutcome(tuple(changed), len(ids) - len(changed))

    def reset_state(self, slug: str) -> BulkOutcome:
        """Reset every user at ``slug`` (which need not be in the flow map any more)."""
        parse(slug)
        return self._each_at(
            slug, lambda s: self.service.reset(s.user_id, expected_version=s.version)
        )

    def move_state(self, slug: str, target: str, *, run_action: bool = False) -> BulkOutcome:
        """Move every user at ``slug`` to ``target``: with update_session_to, or step_to when
        ``run_action``. For a state renamed or removed in a deploy, ``slug`` need not be in the
        flow map; ``target`` must be."""
        parse(slug)
        target = self.service._checked(target)
        if target == slug:
            raise InvalidStateTransition(f"Users at {slug!r} are already there")
        move = self.service.step_to if run_action else self.service.update_session_to

        def one(session: Session) -> bool:
            move(session.user_id, slug=target, expected_version=session.version)
            return True

        return self._each_at(slug, one)

    def _each_at(self, slug: str, apply: Callable[[Session], bool]) -> BulkOutcome:
        """Apply to each user at ``slug`` when the walk reaches them, if they have not moved
        since it read them (their version is checked in the write). Any other error stops the
        walk: BulkOperationFailed says whom it changed before."""
        changed: list[str] = []
        skipped = 0
        cursor = None
        while True:
            page, cursor = self.service.browsing.walk_state(slug, cursor, BATCH)
            for listed in page:
                try:
                    done = apply(listed.session)
                except (SessionConflict, SessionInterrupted):
                    done = False  # moved meanwhile, or busy (locked): left as they are
                except Exception as exc:
                    user_id = listed.session.user_id
                    if self._changed_anyway(user_id, listed.session.version):
                        changed.append(user_id)
                    outcome = BulkOutcome(tuple(changed), skipped)
                    raise BulkOperationFailed(outcome, user_id, exc) from exc
                if done:
                    changed.append(listed.session.user_id)
                else:
                    skipped += 1
            if cursor is None:
                return BulkOutcome(tuple(changed), skipped)

    def _changed_anyway(self, user_id: str, version: int | None) -> bool:
        """After an error: whether the user was written all the same (a post_transition
        receiver or an action raises after the write). ``version``: the one read before the
        write (None for a reset: changed if the session is gone). Unknown counts as no."""
        try:
            current = self.service.peek(user_id)
        except StealthSessionsError:
            return False
        if version is None:
            return current is None
        return current is None or current.version != version
