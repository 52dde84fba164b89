"""One exception tree for everything the app raises on purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .values import LockInfo


class StealthSessionsError(Exception):
    """Base class of every error raised by stealth_sessions."""


class InvalidSlug(StealthSessionsError, ValueError):
    """A session slug is not of the form ``flow->state`` with identifier names."""


class InvalidUserId(StealthSessionsError, ValueError):
    """A user id is empty, too long, or contains whitespace or control characters."""


class InvalidCursor(StealthSessionsError, ValueError):
    """A listing cursor that no listing handed out, or one of a listing in another order."""


class InvalidStateTransition(StealthSessionsError):
    """The target flow or state is unknown, or the transition cannot be made."""


class NoBackToSession(InvalidStateTransition):
    """``step_back`` was called for a user with no stored back-to session."""


class SessionConflict(StealthSessionsError):
    """The stored session version is not the one the caller expected."""

    def __init__(self, user_id: str, expected: int, actual: int) -> None:
        self.user_id = user_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Session of user {user_id!r} is at version {actual}, not the expected {expected}"
        )


class SessionLocked(StealthSessionsError):
    """The per-user lock could not be acquired in time, or was lost before release.
    ``lock``: who holds it (a LockInfo), when known."""

    def __init__(self, message: str, lock: LockInfo | None = None) -> None:
        self.lock = lock
        super().__init__(message)


class SessionInterrupted(SessionLocked):
    """Another owner holds the user's lock (``lock``, a LockInfo): this write was not applied
    and nothing was written (Stealth's interrupt detection). Retry after the lock's release,
    or do the work inside the owner's ``with sessions.lock(user_id):``."""


class BulkOperationFailed(StealthSessionsError):
    """A bulk operation stopped part-way, at ``user_id``; ``outcome`` (a BulkOutcome) says
    whom it changed before. The cause (a receiver's exception, an outage...) is chained."""

    def __init__(self, outcome: object, user_id: str, cause: BaseException) -> None:
        self.outcome = outcome
        self.user_id = user_id
        super().__init__(
            f"Stopped at user {user_id!r} after changing {getattr(outcome, 'changed', 0)}: "
            f"{type(cause).__name__}: {cause}"
        )


class SessionStoreUnavailable(StealthSessionsError):
    """Redis could not be reached or refused the command; nothing can be said of the session."""


# -- scheduled steps ------------------------------------------------------------------------


class InvalidSchedule(StealthSessionsError, ValueError):
    """A scheduled step's time is unusable: a naive datetime, a delay that is not > 0, or a
    value that is neither a number of seconds, a timedelta nor a datetime."""
