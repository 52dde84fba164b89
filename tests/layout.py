"""The documented key layout, spelled out independently of stealth_sessions.keys, for tests
that play an operator with redis-cli: ``<ns>:{<CRC-32 of the user id mod 64>}:<kind>:<id>``."""

import zlib

from django.core.cache import caches


def key(user_id: str, kind: str = "session", namespace: str = "stealth") -> str:
    shard = zlib.crc32(user_id.encode()) % 64
    return caches["default"].make_key(f"{namespace}:{{{shard:02d}}}:{kind}:{user_id}")
