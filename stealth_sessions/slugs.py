"""Session slugs: ``"flow->state"``, both names identifiers."""

from __future__ import annotations

import re
from functools import lru_cache

from .exceptions import InvalidSlug

SEPARATOR = "->"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SLUG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)->([A-Za-z_][A-Za-z0-9_]*)\Z")


def is_identifier(name: object) -> bool:
    return isinstance(name, str) and IDENTIFIER.match(name) is not None


def slugify(flow: str, state: str) -> str:
    """Return ``"flow->state"``; raise InvalidSlug unless both are identifiers."""
    if not is_identifier(flow) or not is_identifier(state):
        raise InvalidSlug(
            f"Cannot build a slug from flow {flow!r} and state {state!r}: "
            "both must be identifiers ([A-Za-z_][A-Za-z0-9_]*)"
        )
    return f"{flow}{SEPARATOR}{state}"


def parse(slug: object) -> tuple[str, str]:
    """Return ``(flow, state)`` for a well-formed slug; raise InvalidSlug otherwise."""
    if not isinstance(slug, str):
        raise InvalidSlug(f"A slug must be a string like 'hello->say_hello', not {slug!r}")
    return _parse(slug)


@lru_cache(maxsize=4096)
def _parse(slug: str) -> tuple[str, str]:
    match = _SLUG.match(slug)
    if match is None:
        raise InvalidSlug(
            f"Malformed slug {slug[:100]!r}: expected 'flow->state' where both are "
            "identifiers, e.g. 'hello->say_hello'"
        )
    return match.group(1), match.group(2)
