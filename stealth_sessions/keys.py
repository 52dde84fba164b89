"""Redis key names, built in this one place. Pure Python: no I/O.

Every name starts with ``base``, the cache's ``make_key(KEY_NAMESPACE)`` (so the cache's
KEY_PREFIX and VERSION apply). A user's keys wrap the user id, as given, in a hash tag::

    <base>:{<user_id>}            current slug, e.g. "hello->say_hola"
    <base>:{<user_id>}:previous   previous slug
    <base>:{<user_id>}:back_to    back-to slug
    <base>:{<user_id>}:history    latest transitions (a list of JSON arrays)
    <base>:{<user_id>}:meta       internal: "<0|1><version>|<slug>": 1 if the keys carry an
                                  expiry (0 if not), the write counter, and the slug the
                                  indexes list the user under
    <base>:{<user_id>}:lock       per-user lock
    <base>:{<user_id>}:steps      pending scheduled steps: step id -> JSON record (no TTL)
    <base>:{<user_id>}:step_outcomes  latest outcomes of scheduled steps (a list of JSON arrays)

The suffixes hold no ``}``, so no user id can produce another user's key names, whatever it
contains. The Lua scripts get the current key only and name the user's other keys from it
(lua/prelude.lua ``user_keys`` mirrors USER_SUFFIXES). Indexes live under ``<base>:idx:``
(user keys always have ``{`` there); the scheduled steps' sweep index is
``<base>:idx:steps``, a ZSET of ``<step_id>:<user_id>`` scored by the time (ms) the sweep
should next look at the step.
"""

from __future__ import annotations

USER_SUFFIXES = ("", ":previous", ":back_to", ":history", ":meta")


class KeySpace:
    __slots__ = ("base", "user_prefix", "index_prefix")

    def __init__(self, base: str) -> None:
        self.base = base
        self.user_prefix = base + ":{"
        self.index_prefix = base + ":idx:"

    def user_keys(self, user_id: str) -> tuple[str, ...]:
        """All the user's session keys, current first (not the lock or scheduled steps)."""
        k = f"{self.user_prefix}{user_id}}}"
        return tuple(k + suffix for suffix in USER_SUFFIXES)

    def current(self, user_id: str) -> str:
        return f"{self.user_prefix}{user_id}}}"

    def session_keys(self, user_id: str) -> tuple[str, str, str, str]:
        """What a read needs, in the order the store reads it: current, previous, back_to,
        meta (lua/prelude.lua ``read_user`` mirrors it)."""
        k = f"{self.user_prefix}{user_id}}}"
        return (k, k + ":previous", k + ":back_to", k + ":meta")

    def history(self, user_id: str) -> str:
        return f"{self.user_prefix}{user_id}}}:history"

    def lock(self, user_id: str) -> str:
        return f"{self.user_prefix}{user_id}}}:lock"

    def index(self, name: str) -> str:
        return self.index_prefix + name

    # -- scheduled steps (never given a TTL: they must outlive the session) ----------------

    def steps(self, user_id: str) -> str:
        return f"{self.user_prefix}{user_id}}}:steps"

    def step_outcomes(self, user_id: str) -> str:
        return f"{self.user_prefix}{user_id}}}:step_outcomes"

    @property
    def steps_index(self) -> str:
        return self.index_prefix + "steps"

    @staticmethod
    def step_member(user_id: str, step_id: str) -> str:
        """The sweep index member; step ids hold no ``:``, so it splits back unambiguously."""
        return f"{step_id}:{user_id}"
