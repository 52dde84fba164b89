"""User ids: the platform's id of a user, as given (PSIDs, phone numbers, ``whatsapp:+44...``)."""

from __future__ import annotations

import re

from .exceptions import InvalidUserId

MAX_USER_ID_LENGTH = 256
# Whitespace and control characters (C0, DEL, C1) would break redis-cli use and log lines.
_BAD_USER_ID_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def validate_user_id(user_id: object) -> str:
    """Return ``user_id`` if acceptable, else raise InvalidUserId saying why."""
    if type(user_id) is not str:
        raise InvalidUserId(f"A user id must be a string, not {type(user_id).__name__}")
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidUserId(
            f"A user id must have 1 to {MAX_USER_ID_LENGTH} characters, not {len(user_id)}"
        )
    if _BAD_USER_ID_CHAR.search(user_id):
        raise InvalidUserId(f"User id {user_id[:40]!r} contains whitespace or a control character")
    if not user_id.isascii():
        try:
            user_id.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUserId(f"User id {user_id[:40]!r} is not valid Unicode") from None
    return user_id
