"""The only module that talks to Redis.

Every per-user write is one Lua script: atomic, one round trip. Redis errors are wrapped once,
here, as SessionStoreUnavailable, so an outage can never read as "no session".
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any

from redis import Redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError, RedisError

from .exceptions import SessionLocked, SessionStoreUnavailable
from .keys import KeySpace

# Status codes returned by the scripts (see lua/*.lua).
CONFLICT, UNCHANGED, SLID, WRITTEN, NO_SESSION = 0, 1, 2, 3, -1
# transition.lua firing a scheduled step: already applied or cancelled; dropped (if_unchanged).
STEP_GONE, STEP_DROPPED = -2, -3

Row = list[Any]  # [status, current, previous, back_to, version, pttl] as the scripts return it


class Script:
    """A Lua script run with EVALSHA, loaded on first use (and again after SCRIPT FLUSH)."""

    __slots__ = ("source", "sha")

    def __init__(self, name: str) -> None:
        lua = files(__package__).joinpath("lua")
        self.source = lua.joinpath("prelude.lua").read_text() + lua.joinpath(name).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            # execute_command, not evalsha(): two Python frames fewer on every write.
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


@cache
def _scripts() -> dict[str, Script]:
    names = ("read", "transition", "back_to", "reset", "count", "list")
    return {name: Script(f"{name}.lua") for name in names}


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise SessionStoreUnavailable(f"Redis failed while {what}: {exc}") from exc


def now_ms() -> int:
    """Milliseconds since the epoch, by this process's clock (history times, expiry index)."""
    return int(time.time() * 1000)


def decode(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


class RedisStore:
    """Raw session storage over a redis-py client. Knows keys and scripts, not flows or signals."""

    def __init__(self, client: Redis, keys: KeySpace) -> None:
        self.client = client
        self.keys = keys
        scripts = _scripts()
        self._read = scripts["read"]
        self._transition = scripts["transition"]
        self._back_to = scripts["back_to"]
        self._reset = scripts["reset"]
        self._count = scripts["count"]
        self._list = scripts["list"]
        self._ix = keys.index_prefix
        self._settings_of: dict[tuple[int | None, int], bytes] = {}

    def _settings(self, ttl_ms: int | None, history_length: int = 0) -> bytes:
        """ARGV[1] of the per-user scripts (lua/prelude.lua ``settings``), made once."""
        try:
            return self._settings_of[ttl_ms, history_length]
        except KeyError:
            value = f"{ttl_ms or ''}|{history_length}|{self._ix}".encode()
            return self._settings_of.setdefault((ttl_ms, history_length), value)

    def read(self, user_id: str, ttl_ms: int | None, slide: bool) -> Row | None:
        """The user's session row, or None. ``slide``: get (slides the expiry, re-indexes a
        slug changed by hand); else peek (reads only)."""
        keys = self.keys.session_keys(user_id)
        try:
            if ttl_ms is None or not slide:
                # The hot path: one MGET, no script.
                answered, row = _answer(self.client.execute_command("MGET", *keys), slide)
                if answered:
                    return row
            return self._read(
                self.client,
                keys[:1],
                (self._settings(ttl_ms), now_ms(), "1" if slide else "0"),
            )
        except RedisError as exc:
            raise SessionStoreUnavailable(f"Redis failed while reading a session: {exc}") from exc

    def read_with_steps(
        self, user_id: str, ttl_ms: int | None, slide: bool
    ) -> tuple[Row | None, dict[str, dict[str, Any]]]:
        """read() and steps() in one round trip (for the HTTP API, which shows both)."""
        keys, steps_key = self.keys.session_keys(user_id), self.keys.steps(user_id)
        try:
            if ttl_ms is None or not slide:
                # read()'s hot path, with HGETALL pipelined (not a transaction: no MULTI).
                pipe = self.client.pipeline(transaction=False)
                pipe.execute_command("MGET", *keys)
                pipe.execute_command("HGETALL", steps_key)
                values, raw = pipe.execute()
                answered, row = _answer(values, slide)
                if answered:
                    return row, _records(raw)
            row = self._read(
                self.client,
                (keys[0], steps_key),
                (self._settings(ttl_ms), now_ms(), "1" if slide else "0"),
            )
        except RedisError as exc:
            raise SessionStoreUnavailable(f"Redis failed while reading a session: {exc}") from exc
        steps = _records(row.pop())
        return (None if row[0] == NO_SESSION else row), steps

    def transition(
        self,
        user_id: str,
        target: str,
        *,
        update: bool,
        expected_version: int | None,
        ttl_ms: int | None,
        method: str,
        history_length: int,
        origin: str = "code",
        step: tuple[str, bool, str | None] | None = None,
        with_steps: bool = False,
    ) -> Row:
        """``with_steps``: a row that is not a conflict gets the user's pending steps (as
        steps() returns them) appended, read in the same script."""
        now = now_ms()
        args: tuple[Any, ...] = (
            self._settings(ttl_ms, history_length),
            now,
            target,
            ("u" if update else "s") + ("" if expected_version is None else str(expected_version)),
            # The history entry [at, method, source, target, origin], but for its source.
            f"[{now},{_json_string(method)},",
            _entry_tail(target, origin),
        )
        if step is not None:  # a scheduled step firing: (step id, if_unchanged, source)
            args += (step[0], "1" if step[1] else "0", step[2] or "")
        k = self.keys.current(user_id)
        try:
            if not with_steps:
                return self._transition(self.client, (k,), args)
            row = self._transition(self.client, (k, self.keys.steps(user_id)), args)
        except RedisError as exc:
            raise SessionStoreUnavailable(f"Redis failed while writing a session: {exc}") from exc
        if len(row) > 6:
            row[6] = _records(row[6])
        return row

    def set_back_to(
        self,
        user_id: str,
        target: str,
        *,
        expected_version: int | None,
        ttl_ms: int | None,
        with_steps: bool = False,
    ) -> Row:
        """``with_steps``: as transition()."""
        expected = "" if expected_version is None else expected_version
        args = (self._settings(ttl_ms), now_ms(), target, expected)
        k = self.keys.current(user_id)
        keys = (k, self.keys.steps(user_id)) if with_steps else (k,)
        with translate_errors("writing a back-to session"):
            row = self._back_to(self.client, keys, args)
        if len(row) > 6:
            row[6] = _records(row[6])
        return row

    def reset(
        self, user_id: str, *, expected_version: int | None, keep: int, ttl_ms: int
    ) -> tuple[Row, dict[str, dict[str, Any]]]:
        """Remove the user's session keys and cancel the user's scheduled steps, in one
        script. Returns the removed session's row and the steps cancelled (``keep``,
        ``ttl_ms``: of the outcomes list, as for remove_steps)."""
        expected = "" if expected_version is None else expected_version
        args = (self._settings(None), now_ms(), expected, self.keys.steps_index, keep, ttl_ms)
        with translate_errors("resetting a session"):
            row = self._reset(self.client, (self.keys.current(user_id),), args)
        return row[:6], _records(row[6]) if len(row) > 6 else {}

    def history(self, user_id: str, limit: int) -> list[list[Any]]:
        """``[at ms, method, source or False, target, origin]`` entries, newest first."""
        with translate_errors("reading a session's history"):
            raw = self.client.lrange(self.keys.history(user_id), 0, limit - 1)
        # A source set by hand may be any bytes: decoded leniently, as slugs are.
        return [
            json.loads(item.decode("utf-8", "replace") if isinstance(item, bytes) else item)
            for item in raw
        ]

    def count_by_state(self) -> dict[str, int]:
        with translate_errors("counting sessions"):
            flat = self._count(self.client, (), (self._ix, self.keys.user_prefix, now_ms()))
        return {decode(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}  # type: ignore[misc]

    def list_by_activity(
        self, scope: str, name: str, cursor: tuple[int, str] | None, limit: int
    ) -> list[Row]:
        """Up to ``limit + 1`` rows, newest activity first, after ``cursor`` (score, user id).
        ``scope``: "all", "flow" or "slug", ``name`` the flow or slug. Rows: ``[user_id,
        current, previous, back_to, version, pttl, activity ms, pending steps]``."""
        score, user_id = ("", "") if cursor is None else cursor
        args = (self._ix, self.keys.user_prefix, now_ms(), limit, "activity", scope, name)
        with translate_errors("listing sessions"):
            return self._list(self.client, (), (*args, score, user_id))[0]

    def list_by_user_id(
        self,
        lex_min: str,
        lex_max: bytes | str,
        limit: int,
        want_slug: str,
        want_flow: str,
        budget: int,
    ) -> tuple[list[Row], str | None]:
        """Up to ``limit + 1`` rows (as list_by_activity's) in user id order, from a lex range
        of the user index; examines at most ``budget`` users, and then also returns the last
        user id examined, where the next call resumes."""
        args = (self._ix, self.keys.user_prefix, now_ms(), limit, "prefix", lex_min, lex_max)
        with translate_errors("listing sessions"):
            rows, resume = self._list(self.client, (), (*args, want_slug, want_flow, budget))
        return rows, decode(resume or None)

    # -- locks: redis-py's Lock (owner token, auto-release after timeout) -----------------

    @contextmanager
    def lock(self, user_id: str, timeout: float, blocking_timeout: float | None) -> Iterator[None]:
        lock = self.client.lock(
            self.keys.lock(user_id),
            timeout=timeout,
            blocking_timeout=blocking_timeout,
            thread_local=False,
        )
        with translate_errors("acquiring a session lock"):
            acquired = lock.acquire()
        if not acquired:
            raise SessionLocked(
                f"Session of user {user_id!r} is locked; not acquired within {blocking_timeout}s"
            )
        try:
            yield
        finally:
            try:
                lock.release()
            except LockNotOwnedError as exc:
                raise SessionLocked(
                    f"The lock on user {user_id!r} expired after {timeout}s, before it was "
                    "released: another worker may have taken it meanwhile"
                ) from exc
            except (LockError, RedisError) as exc:
                raise SessionStoreUnavailable(
                    f"Redis failed while releasing a lock: {exc}"
                ) from exc

    def is_locked(self, user_id: str) -> bool:
        with translate_errors("reading a session lock"):
            return bool(self.client.exists(self.keys.lock(user_id)))

    def ping(self) -> None:
        with translate_errors("pinging"):
            self.client.ping()

    # -- scheduled steps ------------------------------------------------------------------
    # A user's pending steps: the hash <user>:steps (step id -> JSON record), no TTL, plus the
    # sweep index <base>:idx:steps. Outcomes: the bounded list <user>:step_outcomes. Firing
    # goes through transition() with step=..., which takes the record atomically.

    def add_step(
        self,
        user_id: str,
        step_id: str,
        target: str,
        *,
        due_ms: int,
        created_ms: int,
        if_unchanged: bool,
        method: str,
        sweep_after_ms: int,
    ) -> str | None:
        """Store a pending step; returns the user's current slug (its recorded source)."""
        args = (
            self.keys.steps_index,
            user_id,
            step_id,
            target,
            due_ms,
            created_ms,
            "1" if if_unchanged else "0",
            method,
            sweep_after_ms,
        )
        script = _step_script("step_add")
        with translate_errors("scheduling a step"):
            return decode(script(self.client, (self.keys.current(user_id),), args))

    def steps(self, user_id: str) -> dict[str, dict[str, Any]]:
        """The user's pending steps: ``{step id: record}``."""
        with translate_errors("reading scheduled steps"):
            raw = self.client.hgetall(self.keys.steps(user_id))
        return _records(raw)

    def step(self, user_id: str, step_id: str) -> dict[str, Any] | None:
        with translate_errors("reading a scheduled step"):
            raw = self.client.hget(self.keys.steps(user_id), step_id)
        return None if raw is None else json.loads(raw)

    def steps_of(self, members: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        """The records of ``(user_id, step_id)`` pairs, in one round trip (None: gone)."""
        with translate_errors("reading scheduled steps"):
            pipe = self.client.pipeline(transaction=False)
            for user_id, step_id in members:
                pipe.hget(self.keys.steps(user_id), step_id)
            raw = pipe.execute()
        return [None if r is None else json.loads(r) for r in raw]

    def remove_steps(
        self,
        user_id: str,
        step_ids: Sequence[str],
        *,
        now_ms: int,
        outcome: str,
        reason: str,
        keep: int,
        ttl_ms: int,
    ) -> dict[str, dict[str, Any]]:
        """Remove the given pending steps (none given: all), recording ``outcome``; returns
        those removed by this call (not those already gone)."""
        args = (self.keys.steps_index, user_id, now_ms, outcome, reason, keep, ttl_ms, *step_ids)
        with translate_errors("removing scheduled steps"):
            flat = _step_script("step_remove")(self.client, (self.keys.current(user_id),), args)
        return _records(flat)

    def record_step_outcome(
        self, user_id: str, entry: Sequence[Any], *, keep: int, ttl_ms: int
    ) -> None:
        key = self.keys.step_outcomes(user_id)
        with translate_errors("recording a step outcome"):
            pipe = self.client.pipeline(transaction=True)
            pipe.lpush(key, json.dumps(list(entry)))
            pipe.ltrim(key, 0, keep - 1)
            pipe.pexpire(key, ttl_ms)
            pipe.execute()

    def step_outcomes(self, user_id: str, limit: int) -> list[list[Any]]:
        """``[at ms, step id, target, outcome, reason]`` entries, newest first."""
        with translate_errors("reading step outcomes"):
            raw = self.client.lrange(self.keys.step_outcomes(user_id), 0, limit - 1)
        return [json.loads(item) for item in raw]

    def claim_overdue_steps(
        self, before_ms: int, next_look_ms: int, limit: int
    ) -> list[tuple[str, str]]:
        """For the sweep: ``(user_id, step_id)`` of indexed steps scored at or before
        ``before_ms``, re-scored to ``next_look_ms`` so no other sweep claims them meanwhile."""
        args = (self.keys.steps_index, before_ms, next_look_ms, limit)
        with translate_errors("sweeping scheduled steps"):
            members = _step_script("step_sweep")(self.client, (), args)
        claimed = []
        for member in members:
            step_id, _, user_id = member.decode("utf-8", "replace").partition(":")
            claimed.append((user_id, step_id))
        return claimed

    def forget_step(self, user_id: str, step_id: str) -> None:
        """Drop a sweep index entry whose step is gone (applied, cancelled, deleted by hand)."""
        with translate_errors("sweeping scheduled steps"):
            self.client.zrem(self.keys.steps_index, self.keys.step_member(user_id, step_id))

    def pending_steps_count(self) -> int:
        with translate_errors("counting scheduled steps"):
            return int(self.client.zcard(self.keys.steps_index))


def _answer(values: list[bytes | None], slide: bool) -> tuple[bool, Row | None]:
    """What one MGET of ``session_keys`` tells without a script: ``(True, row or None)`` when
    meta shows the indexes agree with the current slug and the keys carry no expiry (and, for
    get, nothing was deleted by hand); ``(False, None)`` when a script must run."""
    cur, prev, back, meta = values
    if cur is None and (meta is None or not slide):
        return True, None
    if meta is not None and meta[0] == 48:  # b"0<version>|<slug>": no expiry
        version, _, slug = meta[1:].partition(b"|")
        if slug == cur and version.isdigit():
            return True, [WRITTEN, cur, prev, back, int(version), -1]
    return False, None


@lru_cache(maxsize=1024)
def _json_string(value: str) -> str:
    return json.dumps(value)


@lru_cache(maxsize=1024)
def _entry_tail(target: str, origin: str) -> str:
    """The end of a history entry, after its source (see lua/transition.lua)."""
    return f",{json.dumps(target)},{json.dumps(origin)}]"


def _records(flat: list[bytes] | dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """``{step id: record}`` from a steps hash's HGETALL (flat from a script, or a dict)."""
    if isinstance(flat, dict):
        return {decode(k): json.loads(v) for k, v in flat.items()}  # type: ignore[misc]
    return {decode(flat[i]): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}  # type: ignore[misc]


@cache
def _step_script(name: str) -> Script:
    return Script(f"{name}.lua")


def from_cache(alias: str, namespace: str) -> RedisStore:
    """A store on the raw redis-py client of a django-redis cache."""
    from django.core.cache import caches

    cache_ = caches[alias]
    client = cache_.client.get_client(write=True)  # type: ignore[attr-defined]
    base = str(cache_.make_key(namespace))
    return RedisStore(client, KeySpace(base))
