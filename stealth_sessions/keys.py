"""Redis key names, built in this one place. Pure Python: no I/O.

Every name starts with ``base``, the cache's ``make_key(KEY_NAMESPACE)`` (so the cache's
KEY_PREFIX and VERSION apply), then a hash tag naming the user's **shard**: CRC-32 of the
UTF-8 user id, modulo ``SHARDS``. A user's keys and the index entries a write of theirs
changes share that tag, so every script runs in one Redis Cluster slot; reads across users
gather from the ``SHARDS`` shards. The layout is the same on a single Redis and on a Cluster::

    <base>:{NN}:session:<user_id>        current slug, a plain string ("hello->say_hola")
    <base>:{NN}:previous:<user_id>       previous slug (plain string)
    <base>:{NN}:back_to:<user_id>        back-to slug (plain string)
    <base>:{NN}:data:<user_id>           the app's own: version, last activity, history
    <base>:{NN}:lock:<user_id>           per-user lock
    <base>:{NN}:steps:<user_id>          pending scheduled steps: step id -> JSON record
    <base>:{NN}:step_outcomes:<user_id>  latest outcomes of scheduled steps
    <base>:{NN}:failures:<user_id>       catch-all levels: slug -> '<count>|<expires ms>'

    <base>:{NN}:sessions    the shard's users, by slug then newest activity (a lex ZSET)
    <base>:{NN}:slugs       the slugs in use in the shard (a SET)
    <base>:{NN}:codes       the shard's history dictionary (HASH, see lua/prelude.lua)
    <base>:{NN}:due         the shard's scheduled steps by sweep time (ZSET)

    <base>:bulk_job:<job_id>        a background bulk job's record and progress (HASH)
    <base>:bulk_job_lease:<job_id>  the token of the run holding the job (a short expiry)
    <base>:bulk_jobs                unfinished bulk jobs, by last progress (ZSET of job ids)

The bulk job keys have no hash tag: each command on them names one key.

The kind of key comes before the user id, so no user id, whatever it holds, names another
user's key. ``data``'s format and the index members are documented in lua/prelude.lua.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

SHARDS = 64
"""Fixed: part of the key layout (changing it would mean re-keying every user)."""


def shard_of(user_id: str) -> int:
    return zlib.crc32(user_id.encode()) % SHARDS


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The keys one shard holds for every user in it."""

    tag: str
    sessions: str
    slugs: str
    codes: str
    due: str


@dataclass(frozen=True, slots=True)
class UserKeys:
    """One user's keys, and their shard's."""

    user_id: str
    shard: ShardKeys
    session: str
    previous: str
    back_to: str
    data: str
    lock: str
    steps: str
    step_outcomes: str
    failures: str


class KeySpace:
    __slots__ = ("base", "bulk_jobs", "shards")

    def __init__(self, base: str) -> None:
        self.base = base
        self.shards = tuple(self._shard(n) for n in range(SHARDS))
        self.bulk_jobs = f"{base}:bulk_jobs"  # unfinished bulk jobs (stealth_sessions/jobs.py)

    def _shard(self, n: int) -> ShardKeys:
        tag = f"{self.base}:{{{n:02d}}}"
        return ShardKeys(tag, f"{tag}:sessions", f"{tag}:slugs", f"{tag}:codes", f"{tag}:due")

    def user(self, user_id: str) -> UserKeys:
        shard = self.shards[shard_of(user_id)]
        tag = shard.tag
        return UserKeys(
            user_id,
            shard,
            f"{tag}:session:{user_id}",
            f"{tag}:previous:{user_id}",
            f"{tag}:back_to:{user_id}",
            f"{tag}:data:{user_id}",
            f"{tag}:lock:{user_id}",
            f"{tag}:steps:{user_id}",
            f"{tag}:step_outcomes:{user_id}",
            f"{tag}:failures:{user_id}",
        )

    def session_keys(self, user_id: str) -> tuple[str, str, str, str]:
        """What a read needs, in the order the store reads it: session, previous, back_to,
        data (the hot path of get: one MGET)."""
        tag = self.shards[shard_of(user_id)].tag
        return (
            f"{tag}:session:{user_id}",
            f"{tag}:previous:{user_id}",
            f"{tag}:back_to:{user_id}",
            f"{tag}:data:{user_id}",
        )

    def export_keys(self, user_id: str) -> tuple[str, str, str, str, str]:
        """What an export reads of a user (lua/export.lua): session_keys(), then steps."""
        tag = self.shards[shard_of(user_id)].tag
        return (
            f"{tag}:session:{user_id}",
            f"{tag}:previous:{user_id}",
            f"{tag}:back_to:{user_id}",
            f"{tag}:data:{user_id}",
            f"{tag}:steps:{user_id}",
        )

    def bulk_job(self, job_id: str) -> str:
        """A background bulk job's record (a HASH; see stealth_sessions/jobs.py)."""
        return f"{self.base}:bulk_job:{job_id}"

    def bulk_job_lease(self, job_id: str) -> str:
        """The lease of the run working on a bulk job (a string, with an expiry)."""
        return f"{self.base}:bulk_job_lease:{job_id}"
