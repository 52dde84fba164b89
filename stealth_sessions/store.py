"""The only module that talks to Redis (with cluster.py, which builds cluster clients).

Every per-user write is one Lua script: atomic, one round trip, all its keys in one Cluster
slot (see keys.py). Reads across users gather from every shard in bounded calls. Redis errors
are wrapped once, here, as SessionStoreUnavailable, so an outage can never read as "no
session". Results are the named types below; the key and data layout is in keys.py and
lua/prelude.lua.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from enum import IntEnum
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any, TypeVar

from redis.commands.core import Script
from redis.exceptions import (
    LockError,
    LockNotOwnedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
)

from . import locking
from .exceptions import SessionLocked, SessionStoreUnavailable
from .keys import KeySpace, ShardKeys, UserKeys, shard_of
from .values import LockInfo, from_ms

REDIS_ERRORS = (RedisError, RedisClusterException)
MAX_INV = (1 << 44) - 1
"""Activity is stored inverted (MAX_INV - ms, 11 hex digits) so that newest sorts first."""


def now_ms() -> int:
    """Milliseconds since the epoch, by this process's clock (activity, history times)."""
    return int(time.time() * 1000)


def inverted(ms: int) -> str:
    return f"{MAX_INV - ms:011x}"


def activity_of(inv: bytes | str) -> int:
    return MAX_INV - int(inv, 16)


def decode(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


class Status(IntEnum):
    """What a write did (the scripts' status codes)."""

    INTERRUPTED = -4  # another owner holds the user's lock: nothing written
    STEP_DROPPED = -3  # a scheduled step with if_unchanged: the user moved on
    STEP_GONE = -2  # a scheduled step already applied or cancelled
    NO_SESSION = -1
    CONFLICT = 0  # the expected version was not the stored one
    UNCHANGED = 1  # update_session_to the current slug: nothing done
    SLID = 2  # step_to the current slug: expiry slid, nothing else written
    WRITTEN = 3


@dataclass(frozen=True, slots=True)
class Stored:
    """A session as stored. ``current``, ``previous``, ``back_to`` are raw bytes (anything
    may have been set by hand); ``activity_ms``: the user's last activity (None if unknown)."""

    current: bytes
    previous: bytes | None
    back_to: bytes | None
    version: int
    activity_ms: int | None


@dataclass(frozen=True, slots=True)
class Written:
    """The result of a write: ``session`` after it (None on a conflict, without a session, or
    when a scheduled step was not applied); ``version``: the stored version on a conflict;
    ``current``: where the user is when an if_unchanged step was dropped; ``lock``: who
    holds the user's lock when INTERRUPTED."""

    status: Status
    session: Stored | None = None
    version: int = 0
    current: str | None = None
    lock: LockInfo | None = None


@dataclass(frozen=True, slots=True)
class Failures:
    """A catch-all counter: ``level`` (0: none) of ``slug``, the user's current slug (None:
    no session)."""

    level: int
    slug: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A history entry as stored."""

    at_ms: int
    method: str
    origin: str
    source: str | None
    target: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A row of a listing: the user, their session as stored, and pending steps."""

    user_id: str
    session: Stored
    pending_steps: int
    entry: tuple[str, str] | None  # (slug, inv) of the user's index entry, as data has it


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A member of a shard's sessions index: ``<slug>|<inv>|<user id>``."""

    slug: str
    inv: str
    user_id: str

    @classmethod
    def parse(cls, member: bytes) -> IndexEntry | None:
        """None for a member that is not the app's (added by hand): ignored, never an error."""
        slug, _, rest = member.decode("utf-8", "replace").partition("|")
        inv, sep, user_id = rest.partition("|")
        if len(inv) != 11 or not sep or not user_id:
            return None
        return cls(slug, inv, user_id)

    @classmethod
    def parse_all(cls, members: Sequence[bytes]) -> list[IndexEntry]:
        return [e for e in map(cls.parse, members) if e is not None]

    @property
    def cursor(self) -> str:
        return f"{self.inv}|{self.user_id}"

    @property
    def order(self) -> tuple[str, bytes]:
        """Redis's order of members within a slug: inv, then user id bytes."""
        return self.inv, self.user_id.encode()


@dataclass(frozen=True, slots=True)
class Restored:
    """A user to write whole (lua/restore.lua): an exported user, or one imported from
    Stealth. ``entries``: history, newest first; ``steps``: ``(step id, record, sweep score
    ms)``, the record as the steps hash holds it."""

    user_id: str
    slug: str
    previous: str | None
    back_to: str | None
    version: int
    activity_ms: int
    ttl_ms: int | None
    entries: tuple[Entry, ...] = ()
    steps: tuple[tuple[str, dict[str, Any], int], ...] = ()


@dataclass(frozen=True, slots=True)
class Exported:
    """A user as an export reads them (RedisStore.exported): the session as stored, history
    newest first, pending steps ``{step id: record}``."""

    user_id: str
    session: Stored
    entries: list[Entry]
    steps: dict[str, dict[str, Any]]


Quad = tuple[str, str, str | None, str]
HistoryCodes = dict[bytes, Quad | None]
"""A shard's history dictionary as read so far: code -> (method, origin, source, target) of
its JSON array (None: not there)."""


@dataclass(frozen=True, slots=True)
class StealthUser:
    """A user as a Stealth bot keeps them: ``<id>`` (the slug), ``<id>-previous``,
    ``<id>-back_to`` (``""``: none), and the slug key's remaining expiry (None: none)."""

    user_id: str
    slug: str
    previous: str | None
    back_to: str | None
    ttl_ms: int | None


@dataclass(frozen=True, slots=True)
class StealthBatch:
    """What one SCAN call of a Stealth keyspace found: its ``users``, and ``ignored``, how many
    keys are neither a user's slug nor their ``-previous``/``-back_to`` (another type, or a
    string that is not a slug)."""

    users: list[StealthUser]
    ignored: int
    cursor: int


# -- data values (see lua/prelude.lua) ------------------------------------------------------


def parse_data(data: bytes | None) -> tuple[bytes, int, bytes, bytes] | None:
    """``(mode, version, inv, indexed slug)`` of a data value; None if absent or unreadable
    (a value written by hand is ignored, never an error)."""
    if not data:
        return None
    head, sep, rest = data.partition(b"|")
    length, sep2, after = rest[12:].partition(b"|")
    if not (sep and sep2 and head[1:].isdigit() and length.isdigit() and head[:1] in b"01"):
        return None
    return head[:1], int(head[1:]), rest[:11], after[: int(length)]


def index_slug(slug: bytes) -> str:
    """The slug an index member names (lua/prelude.lua ``index_slug``)."""
    if len(slug) > 200 or b"|" in slug or b"\n" in slug:
        return "?"
    return slug.decode("utf-8", "replace")


def _stored(
    cur: bytes, prev: bytes | None, back: bytes | None, meta: tuple[bytes, int, bytes, bytes] | None
) -> Stored:
    # A blank previous or back-to (what Stealth writes for "none") reads as None.
    if meta is None:
        return Stored(cur, prev or None, back or None, 0, None)
    return Stored(cur, prev or None, back or None, meta[1], activity_of(meta[2]))


def lock_info(user_id: str, value: bytes, ms_left: int, mine: bool) -> LockInfo:
    """A lock's value (lua/lock_take.lua) as a LockInfo. A value set by hand reads as held by
    "?" since now."""
    token, _, rest = value.decode("utf-8", "replace").partition("|")
    since, _, rest = rest.partition("|")
    holder, _, slug = rest.partition("|")
    now = now_ms()
    since_ms = int(since) if since.isdigit() else now
    until_ms = now + max(int(ms_left), 0) if int(ms_left) >= 0 else now
    return LockInfo(
        user_id, holder or "?", from_ms(since_ms), from_ms(until_ms), slug or None, mine
    )


def _interrupted(user_id: str, row: list[Any]) -> Written:
    return Written(Status.INTERRUPTED, lock=lock_info(user_id, row[1], row[2], False))


def _written(row: list[Any], user_id: str = "") -> Written:
    status = Status(row[0])
    if status is Status.INTERRUPTED:
        return _interrupted(user_id, row)
    if status is Status.CONFLICT:
        return Written(status, version=int(row[1]))
    if status is Status.STEP_DROPPED:
        return Written(status, current=decode(row[1] or None))
    if status in (Status.STEP_GONE, Status.NO_SESSION):
        return Written(status)
    _, cur, prev, back, version, inv = row[:6]
    return Written(
        status, Stored(cur, prev or None, back or None, int(version), inv and activity_of(inv))
    )


# -- scripts --------------------------------------------------------------------------------

SCRIPT_NAMES = (
    "transition", "read", "back_to", "reset", "history", "count", "page", "expired", "purge",
    "step_add", "step_remove", "step_sweep", "restore", "export", "lock_take", "lock_release",
    "lock_read", "step_retry", "failures",
)  # fmt: skip


@cache
def script_source(name: str) -> str:
    lua = files(__package__).joinpath("lua")
    return lua.joinpath("prelude.lua").read_text() + lua.joinpath(f"{name}.lua").read_text()


@cache
def script_sha(name: str) -> str:
    return hashlib.sha1(script_source(name).encode()).hexdigest()


# -- calls: each built in one place, run by the sync or the async client --------------------
# An operation is a *plan*: a generator that yields the Redis calls it needs (a Command, an
# Eval of one of the scripts, or a Batch of them pipelined) and is sent back their answers,
# which it decodes; it returns the operation's result. RedisStore.run executes a plan on the
# redis-py client, RedisStore.arun on redis.asyncio: what is sent and how answers are read
# is written once. The service's plans yield their own steps too (signals to send), which the
# runner's ``other`` handles.


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command; ``what`` names the operation in a SessionStoreUnavailable."""

    args: tuple[Any, ...]
    what: str


@dataclass(frozen=True, slots=True)
class Eval:
    """One of the Lua scripts (SCRIPT_NAMES) with its KEYS and ARGV."""

    script: str
    keys: tuple[Any, ...]
    args: tuple[Any, ...]
    what: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands and scripts pipelined in one round trip (on a cluster, one per node); the
    answers come back in order."""

    calls: tuple[Command | Eval, ...]
    what: str


@dataclass(frozen=True, slots=True)
class Sleep:
    """Not a Redis call: a pause a plan asks of its runner (a lock's wait between tries),
    time.sleep for ``run``, asyncio.sleep for ``arun``."""

    seconds: float


REDIS_CALLS = (Command, Eval, Batch)
T = TypeVar("T")
Plan = Generator[Any, Any, T]


def _wire(call: Command | Eval) -> tuple[Any, ...]:
    """A Batch member as a command (not pipe.evalsha(): redis-py's cluster pipeline refuses
    it by that name)."""
    if type(call) is Command:
        return call.args
    return ("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)  # type: ignore[union-attr]


def _batch_answers(batch: Batch, results: Sequence[Any], first: bool) -> list[Any] | None:
    """The answers of a pipelined Batch; None when a script must be loaded and the batch sent
    again (the scripts were flushed, or a node is new). Raises the first error."""
    if first and any(isinstance(r, NoScriptError) for r in results):
        return None
    for result in results:
        if isinstance(result, Exception):
            raise result
    return list(results)


def _evals(batch: Batch) -> set[str]:
    return {call.script for call in batch.calls if type(call) is Eval}


def _unavailable(what: str, exc: BaseException) -> SessionStoreUnavailable:
    return SessionStoreUnavailable(f"Redis failed while {what}: {exc}")


class Scripts:
    """The Lua scripts, registered with the client (redis-py loads them on NOSCRIPT)."""

    def __init__(self, client: Any) -> None:
        for name in SCRIPT_NAMES:
            setattr(self, name, client.register_script(script_source(name)))

    transition: Script
    read: Script
    back_to: Script
    reset: Script
    history: Script
    count: Script
    page: Script
    expired: Script
    purge: Script
    step_add: Script
    step_remove: Script
    step_sweep: Script
    restore: Script
    export: Script
    lock_take: Script
    lock_release: Script
    lock_read: Script
    step_retry: Script
    failures: Script


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise SessionStoreUnavailable(f"Redis failed while {what}: {exc}") from exc


@lru_cache(maxsize=1024)
def _entry_ends(method: str, origin: str, target: str) -> tuple[str, str]:
    """A history entry's JSON array before and after its source (see lua/transition.lua)."""
    return f"[{json.dumps(method)},{json.dumps(origin)},", f",{json.dumps(target)}]"


def _user_keys(k: UserKeys) -> tuple[str, ...]:
    """KEYS 1-6 of the per-user scripts (lua/prelude.lua)."""
    return (k.session, k.previous, k.back_to, k.data, k.shard.sessions, k.shard.slugs)


class RedisStore:
    """Raw session storage over a redis-py client (``Redis`` or ``RedisCluster``). Knows keys
    and scripts, not flows or signals.

    Each operation used by the async service is a plan (``plan_*``, see Command above), run
    by ``run`` on ``client`` or by ``arun`` on a redis.asyncio client that ``async_client``
    (a function of no arguments) builds, one per event loop."""

    def __init__(
        self, client: Any, keys: KeySpace, async_client: Callable[[], Any] | None = None
    ) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client)
        self.async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, Scripts, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    # -- running plans ----------------------------------------------------------------------

    def run(self, plan: Plan[T], other: Callable[[Any], Any] | None = None) -> T:
        """Execute ``plan`` on the sync client; what it yields that is not a Redis call goes
        to ``other``. An error (ours, or SessionStoreUnavailable) is thrown into the plan."""
        try:
            call = next(plan)
            while True:
                try:
                    redis_call = isinstance(call, REDIS_CALLS)
                    answer = self.execute(call) if redis_call else other(call)  # type: ignore[misc]
                except Exception as exc:
                    call = plan.throw(exc)
                else:
                    call = plan.send(answer)
        except StopIteration as stop:
            return stop.value

    async def arun(self, plan: Plan[T], other: Callable[[Any], Any] | None = None) -> T:
        """``run`` on the event loop's redis.asyncio client; ``other`` returns awaitables."""
        try:
            call = next(plan)
            while True:
                try:
                    if isinstance(call, REDIS_CALLS):
                        answer = await self.aexecute(call)
                    else:
                        answer = await other(call)  # type: ignore[misc]
                except Exception as exc:
                    call = plan.throw(exc)
                else:
                    call = plan.send(answer)
        except StopIteration as stop:
            return stop.value

    def execute(self, call: Command | Eval | Batch) -> Any:
        try:
            if type(call) is Command:
                return self.client.execute_command(*call.args)
            if type(call) is Eval:
                return getattr(self.scripts, call.script)(call.keys, call.args)
            for first in (True, False):
                pipe = self.client.pipeline(transaction=False)
                for member in call.calls:  # type: ignore[union-attr]
                    pipe.execute_command(*_wire(member))
                answers = _batch_answers(call, pipe.execute(raise_on_error=False), first)  # type: ignore[arg-type]
                if answers is not None:
                    return answers
                for name in _evals(call):  # type: ignore[arg-type]
                    self.client.script_load(script_source(name))
            raise AssertionError("unreachable")
        except REDIS_ERRORS as exc:
            raise _unavailable(call.what, exc) from exc

    async def aexecute(self, call: Command | Eval | Batch) -> Any:
        client, scripts, free = self._async()
        async with free:  # a connection of the pool: wait for one rather than fail
            return await self._aexecute(client, scripts, call)

    async def _aexecute(self, client: Any, scripts: Scripts, call: Command | Eval | Batch) -> Any:
        try:
            if type(call) is Command:
                return await client.execute_command(*call.args)
            if type(call) is Eval:
                return await getattr(scripts, call.script)(call.keys, call.args)
            for first in (True, False):
                pipe = client.pipeline(transaction=False)
                for member in call.calls:  # type: ignore[union-attr]
                    pipe.execute_command(*_wire(member))
                answers = _batch_answers(call, await pipe.execute(raise_on_error=False), first)  # type: ignore[arg-type]
                if answers is not None:
                    return answers
                for name in _evals(call):  # type: ignore[arg-type]
                    await client.script_load(script_source(name))
            raise AssertionError("unreachable")
        except REDIS_ERRORS as exc:
            raise _unavailable(call.what, exc) from exc

    def aclient(self) -> tuple[Any, Scripts]:
        """The running event loop's redis.asyncio client (built on first use: one connection
        pool per loop, as an asyncio connection belongs to the loop that opened it) and its
        scripts."""
        client, scripts, _ = self._async()
        return client, scripts

    def _async(self) -> tuple[Any, Scripts, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        found = self._async_clients.get(loop)
        if found is None:
            if self.async_client is None:
                raise SessionStoreUnavailable("This store was built without an async client")
            # A loop that ended without aclose() (asyncio.run, async_to_sync, an async view
            # under WSGI) leaves its client here, holding its loop: dropped now, so that its
            # connections are collected rather than kept for the life of the process.
            for ended in [old for old in self._async_clients if old.is_closed()]:
                del self._async_clients[ended]
            client = self.async_client()
            # As many calls at once as the pool has connections (a pool that has none left
            # raises instead of waiting; redis-py's blocking pool waits, but costs tens of µs
            # a call): further calls wait here.
            free = asyncio.Semaphore(_max_connections(client))
            found = self._async_clients[loop] = (client, Scripts(client), free)
        return found

    async def aclose(self) -> None:
        """Close the running event loop's client, if one was built (for a loop that ends,
        e.g. ``asyncio.run`` per job; a loop that lives as long as the process needs none)."""
        found = self._async_clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()

    # -- one user ---------------------------------------------------------------------------

    def read(self, user_id: str, ttl_ms: int | None, slide: bool) -> Stored | None:
        return self.run(self.plan_read(user_id, ttl_ms, slide))

    def plan_read(self, user_id: str, ttl_ms: int | None, slide: bool) -> Plan[Stored | None]:
        """The user's session, or None. ``slide`` (get): slides the expiry when due (at most
        every ``slide_every(ttl_ms)``), indexes a slug set by hand and forgets a session that
        expired; else (peek) reads only. The hot path is one MGET, its data parsed once."""
        keys = self.keys.session_keys(user_id)
        cur, prev, back, data = yield Command(("MGET", *keys), "reading a session")
        if not cur:  # None, or blank: no session (what Stealth writes for none)
            if not slide or data is None:
                return None
        else:
            meta = parse_data(data)
            if not slide or _settled(cur, meta, ttl_ms):
                return _stored(cur, prev, back, meta)
        k = self.keys.user(user_id)
        args = (user_id, ttl_ms or "", inverted(now_ms()))
        row = yield Eval("read", _user_keys(k), args, "reading a session")
        return None if row is None else _written(row).session

    def plan_read_with_steps(
        self, user_id: str, ttl_ms: int | None
    ) -> Plan[tuple[Stored | None, dict[str, dict[str, Any]]]]:
        """plan_read(slide=True) and plan_steps() in one round trip when no script must run."""
        k = self.keys.user(user_id)
        what = "reading a session"
        (cur, prev, back, data), raw = yield Batch(
            (
                Command(("MGET", k.session, k.previous, k.back_to, k.data), what),
                Command(("HGETALL", k.steps), what),
            ),
            what,
        )
        meta = parse_data(data)
        if cur and _settled(cur, meta, ttl_ms):
            return _stored(cur, prev, back, meta), _records(raw)
        return (yield from self.plan_read(user_id, ttl_ms, True)), _records(raw)

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
    ) -> Written:
        return self.run(
            self.plan_transition(
                user_id,
                target,
                update=update,
                expected_version=expected_version,
                ttl_ms=ttl_ms,
                method=method,
                history_length=history_length,
                origin=origin,
                step=step,
            )
        )

    def plan_transition(
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
    ) -> Plan[Written]:
        """Move the user to ``target`` (see lua/transition.lua). ``step``: a scheduled step
        firing, ``(step id, if_unchanged, source)``."""
        keys, args = self.transition_call(
            user_id, target, update, expected_version, ttl_ms, method, history_length, origin, step
        )
        return _written((yield Eval("transition", keys, args, "writing a session")), user_id)

    def transition_call(
        self,
        user_id: str,
        target: str,
        update: bool,
        expected_version: int | None,
        ttl_ms: int | None,
        method: str,
        history_length: int,
        origin: str = "code",
        step: tuple[str, bool, str | None] | None = None,
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The KEYS and ARGV of lua/transition.lua, built here only (plan_transition, and
        loaders that pipeline many, as the benchmarks do)."""
        k = self.keys.user(user_id)
        now = now_ms()
        head, tail = _entry_ends(method, origin, target)
        how = ("u" if update else "s") + ("" if expected_version is None else str(expected_version))
        keys: tuple[str, ...] = (*_user_keys(k), k.shard.codes, k.lock)
        args: tuple[Any, ...] = (
            user_id, target, how, ttl_ms or "", history_length, inverted(now), f"{now:011x}",
            head, tail, locking.token(k.lock) or "",
        )  # fmt: skip
        if step is not None:
            keys += (k.steps, k.shard.due)
            args += (step[0], "1" if step[1] else "0", step[2] or "")
        return keys, args

    def plan_set_back_to(
        self, user_id: str, target: str, *, expected_version: int | None, ttl_ms: int | None
    ) -> Plan[Written]:
        k = self.keys.user(user_id)
        expected = "" if expected_version is None else expected_version
        args = (
            user_id, target, expected, ttl_ms or "", inverted(now_ms()),
            locking.token(k.lock) or "",
        )  # fmt: skip
        keys = (*_user_keys(k), k.lock)
        row = yield Eval("back_to", keys, args, "writing a back-to session")
        return _written(row, user_id)

    def plan_reset(
        self, user_id: str, *, expected_version: int | None, keep: int, ttl_ms: int
    ) -> Plan[tuple[Written, dict[str, dict[str, Any]]]]:
        """Remove the user's session and cancel their scheduled steps, in one script. Returns
        the removed session and the steps cancelled (``keep``, ``ttl_ms``: of the outcomes
        list, as for remove_steps)."""
        k = self.keys.user(user_id)
        expected = "" if expected_version is None else expected_version
        keys = (*_user_keys(k), k.steps, k.shard.due, k.step_outcomes, k.lock, k.failures)
        owner = locking.token(k.lock) or ""
        args = (user_id, expected, now_ms(), keep, ttl_ms, owner)
        row = yield Eval("reset", keys, args, "resetting a session")
        if row[0] == Status.INTERRUPTED:
            return _interrupted(user_id, row), {}
        if row[0] == Status.CONFLICT:
            return _written(row), {}
        if row[1] is None:
            return Written(Status.UNCHANGED), _records(row[6])
        return _written([Status.WRITTEN, *row[1:6]]), _records(row[6])

    def plan_failures(self, user_id: str, *, record: bool, ttl_ms: int) -> Plan[Failures]:
        """The catch-all level of the user's current slug, counting a failure first when
        ``record`` (lua/failures.lua)."""
        k = self.keys.user(user_id)
        args = ("record" if record else "read", now_ms(), ttl_ms)
        what = "counting a failure" if record else "reading a failure level"
        level, slug = yield Eval("failures", (k.session, k.failures), args, what)
        return Failures(int(level), decode(slug or None))

    def failures(self, user_id: str, *, record: bool, ttl_ms: int) -> Failures:
        return self.run(self.plan_failures(user_id, record=record, ttl_ms=ttl_ms))

    def plan_history(self, user_id: str, limit: int) -> Plan[list[Entry]]:
        """The latest entries, newest first."""
        k = self.keys.user(user_id)
        call = Eval("history", (k.data, k.shard.codes), (limit,), "reading a session's history")
        entries, arrays = yield call
        return _entries(entries, arrays)

    def history(self, user_id: str, limit: int) -> list[Entry]:
        return self.run(self.plan_history(user_id, limit))

    # -- many users: gathered from every shard, each call bounded ---------------------------

    def _run_many(
        self, script: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]], what: str
    ) -> list[Any]:
        """Run ``script`` once per ``(keys, args)``, pipelined in one round trip (on a cluster,
        one per node)."""
        return self.execute(_many(script, calls, what))

    def _each_shard(
        self,
        script: str,
        keys: Callable[[ShardKeys], Sequence[str]],
        args: Sequence[Any],
        what: str,
    ) -> Batch:
        """``script`` once per shard."""
        return _many(script, [(keys(shard), args) for shard in self.keys.shards], what)

    def count_by_state(self, ttl_ms: int | None) -> dict[str, int]:
        return self.run(self.plan_count_by_state(ttl_ms))

    def plan_count_by_state(self, ttl_ms: int | None) -> Plan[dict[str, int]]:
        cut = "" if ttl_ms is None else inverted(now_ms() - ttl_ms)
        counts: dict[str, int] = {}
        for flat in (yield self._each_shard("count", _index_keys, (cut,), "counting sessions")):
            for i in range(0, len(flat), 2):
                slug = decode(flat[i]) or ""
                counts[slug] = counts.get(slug, 0) + int(flat[i + 1])
        return counts

    def plan_page_by_activity(
        self, scope: str, name: str, cursor: str | None, limit: int, ttl_ms: int | None
    ) -> Plan[list[IndexEntry]]:
        """Up to ``limit`` index entries, newest activity first, after ``cursor`` (an
        IndexEntry's), of every user (``scope`` "all"), a flow's or a slug's users."""
        cut = "" if ttl_ms is None else inverted(now_ms() - ttl_ms)
        merge = PageMerge(self.keys.shards, (scope, name, cut), cursor or "", limit)
        while calls := merge.calls():
            merge.feed((yield _many("page", calls, "listing sessions")))
        return merge.entries

    def plan_scan_user_ids(
        self, prefix: str, shard: int, cursor: int, count: int, *, anywhere: bool = False
    ) -> Plan[tuple[list[IndexEntry], int]]:
        """One ZSCAN call over a shard's index: the entries of users whose id starts with
        ``prefix`` (``anywhere``: contains it) among about ``count`` members, and the cursor
        to go on from (0: done)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
        # Members are "<slug>|<activity>|<user id>" (slugs have no "|"): "*|*x*" may also
        # match in the activity's hex digits, hence the check on the user id below.
        pattern = ("*|*" if anywhere else "*|") + escaped + "*"
        key = self.keys.shards[shard].sessions
        args = ("ZSCAN", key, cursor, "MATCH", pattern, "COUNT", count)
        cursor, members = yield Command(args, "searching sessions")
        entries = IndexEntry.parse_all([member for member, _ in members])
        if anywhere:
            return [e for e in entries if prefix in e.user_id], int(cursor)
        return [e for e in entries if e.user_id.startswith(prefix)], int(cursor)

    def plan_rows(self, entries: Sequence[IndexEntry]) -> Plan[list[Listed | None]]:
        """For each index entry, the user's session as stored and pending step count, in one
        pipelined round trip; None when the entry is stale (the user is gone, or listed under
        another entry since)."""
        rows = yield from self._plan_rows([e.user_id for e in entries])
        return [
            row if row is not None and row.entry == (entry.slug, entry.inv) else None
            for entry, row in zip(entries, rows)
        ]

    def rows(self, entries: Sequence[IndexEntry]) -> list[Listed | None]:
        return self.run(self.plan_rows(entries))

    def plan_row(self, user_id: str) -> Plan[Listed | None]:
        return (yield from self._plan_rows([user_id]))[0]

    def row(self, user_id: str) -> Listed | None:
        return self.run(self.plan_row(user_id))

    def walk_index(
        self, shard: int, lo: bytes | str, hi: str, count: int
    ) -> tuple[list[IndexEntry], bytes | None]:
        return self.run(self.plan_walk_index(shard, lo, hi, count))

    def plan_walk_index(
        self, shard: int, lo: bytes | str, hi: str, count: int
    ) -> Plan[tuple[list[IndexEntry], bytes | None]]:
        """The entries among ``count`` members of a shard's sessions index in its own order
        (slug, then newest activity), from ``lo`` to ``hi`` (ZRANGEBYLEX bounds), and the
        ``lo`` to go on from (None: the range is done): an export's or a bulk change's walk,
        one bounded call at a time."""
        key = self.keys.shards[shard].sessions
        args = ("ZRANGEBYLEX", key, lo, hi, "LIMIT", 0, count)
        members = yield Command(args, "walking sessions")
        resume = b"(" + members[-1] if len(members) == count else None
        return IndexEntry.parse_all(members), resume

    def present(self, user_ids: Sequence[str]) -> list[bool]:
        """Whether each user has a session, in one round trip."""
        with translate_errors("reading sessions"):
            pipe = self.client.pipeline(transaction=False)
            for user_id in user_ids:
                pipe.exists(self.keys.user(user_id).session)
            return [bool(n) for n in pipe.execute()]

    def _plan_rows(self, user_ids: Sequence[str]) -> Plan[list[Listed | None]]:
        what = "listing sessions"
        calls: list[Command | Eval] = []
        for user_id in user_ids:
            k = self.keys.user(user_id)
            calls.append(Command(("MGET", k.session, k.previous, k.back_to, k.data), what))
            calls.append(Command(("HLEN", k.steps), what))
        replies = (yield Batch(tuple(calls), what)) if calls else []
        out: list[Listed | None] = []
        for i, user_id in enumerate(user_ids):
            (cur, prev, back, data), pending = replies[2 * i], replies[2 * i + 1]
            if not cur:
                out.append(None)
                continue
            meta = parse_data(data)
            entry = None if meta is None else (index_slug(meta[3]), meta[2].decode())
            out.append(Listed(user_id, _stored(cur, prev, back, meta), pending, entry))
        return out

    def exported(
        self, shard: int, entries: Sequence[IndexEntry], limit: int, codes: HistoryCodes
    ) -> list[Exported]:
        """The users of index entries of shard ``shard``, whole: session as stored, latest
        ``limit`` history entries and pending steps. One script a user (lua/export.lua),
        pipelined in one round trip, and one HMGET of the shard's history dictionary for the
        codes not yet in ``codes`` (the caller's cache for this shard: a code never changes
        its meaning). A user whose entry is stale (gone, or listed under another entry
        since) or in another shard's index (added by hand) is left out."""
        entries = [e for e in entries if shard_of(e.user_id) == shard]
        calls = [(self.keys.export_keys(entry.user_id), ()) for entry in entries]
        with translate_errors("exporting sessions"):
            replies = self._run_many("export", calls, "exporting sessions")
            users = []
            for entry, (cur, prev, back, data, steps) in zip(entries, replies):
                meta = parse_data(data)
                if not cur or meta is None or meta[2].decode() != entry.inv:
                    continue
                if index_slug(meta[3]) != entry.slug:
                    continue
                stored = _stored(cur, prev, back, meta)
                users.append((entry.user_id, stored, _history(data, limit), steps))
            missing = {
                code
                for _, _, lines, _ in users
                for _, code in lines
                if code[:1] != b"[" and code not in codes
            }
            if missing:
                wanted = sorted(missing)
                arrays = self.client.hmget(self.keys.shards[shard].codes, wanted)
                codes.update((c, a and _quad(a)) for c, a in zip(wanted, arrays))
        return [
            Exported(user_id, stored, _decoded(lines, codes), _records(steps))
            for user_id, stored, lines, steps in users
        ]

    def restore(
        self, users: Sequence[Restored], *, replace: bool, history_length: int
    ) -> list[bool]:
        """Write each user whole (lua/restore.lua), each atomically, pipelined in one round
        trip; True for each written, False for each skipped (a session there, no ``replace``)."""
        calls = []
        for user in users:
            k = self.keys.user(user.user_id)
            keys = (*_user_keys(k), k.shard.codes, k.steps, k.shard.due)
            args: list[Any] = [
                user.user_id, "1" if replace else "0", user.slug, user.previous or "",
                user.back_to or "", user.version, inverted(user.activity_ms), user.ttl_ms or "",
                history_length, len(user.entries),
            ]  # fmt: skip
            for e in user.entries:
                head, tail = _entry_ends(e.method, e.origin, e.target)
                source = "false" if e.source is None else json.dumps(e.source, ensure_ascii=False)
                args.append(f"{e.at_ms:011x}{head}{source}{tail}")
            for step_id, record, score in user.steps:
                args += (step_id, json.dumps(record, separators=(",", ":")), score)
            calls.append((keys, args))
        with translate_errors("restoring sessions"):
            return [bool(r) for r in self._run_many("restore", calls, "restoring sessions")]

    def overdue_steps_count(self, before_ms: int) -> int:
        """How many pending steps the sweep index has due at or before ``before_ms``."""
        with translate_errors("counting scheduled steps"):
            pipe = self.client.pipeline(transaction=False)
            for shard in self.keys.shards:
                pipe.zcount(shard.due, "-inf", before_ms)
            return sum(pipe.execute())

    def scan_steps(self, shard: int, cursor: int, count: int) -> tuple[list[tuple[str, str]], int]:
        """One ZSCAN call over a shard's sweep index: ``(user_id, step_id)`` of about
        ``count`` pending steps, and the cursor to go on from (0: done)."""
        with translate_errors("reading scheduled steps"):
            cursor, members = self.client.zscan(self.keys.shards[shard].due, cursor, count=count)
        pairs = []
        for member, _ in members:
            step_id, _, user_id = member.decode("utf-8", "replace").partition(":")
            pairs.append((user_id, step_id))
        return pairs, cursor

    def purge_expired(self, ttl_ms: int, batch: int = 200) -> int:
        """Drop from the indexes, in batches of ``batch`` users a shard, the users whose
        session expired; returns how many. Each Redis call is bounded by ``batch``."""
        purged = 0
        for number, shard in enumerate(self.keys.shards):
            while True:
                now = now_ms()
                with translate_errors("purging expired sessions"):
                    members = self.scripts.expired(
                        _index_keys(shard), (inverted(now - ttl_ms), batch)
                    )
                    calls, junk = [], []
                    for member in members:
                        entry = IndexEntry.parse(member)
                        if entry is None or shard_of(entry.user_id) != number:
                            junk.append(member)  # not the app's (added by hand)
                            continue
                        keys = _user_keys(self.keys.user(entry.user_id))
                        calls.append((keys, (entry.user_id, member, ttl_ms, now)))
                    if junk:
                        self.client.zrem(shard.sessions, *junk)
                    if calls:
                        purged += sum(self._run_many("purge", calls, "purging expired sessions"))
                if len(members) < batch:
                    break
        return purged

    # -- locks: an owner token, auto-released after the timeout ----------------------------
    # The lock's value names its owner (lua/lock_take.lua); transition.lua, back_to.lua and
    # reset.lua refuse a write from any other owner (interrupt detection). The owner's token
    # is kept in a context variable (stealth_sessions/locking.py) while the block runs.

    def plan_lock_take(
        self, user_id: str, owner: str, timeout: float, blocking_timeout: float | None
    ) -> Plan[bool]:
        """Take the user's lock for ``owner`` (lua/lock_take.lua), trying again every 50 ms
        (a Sleep the runner waits out) for up to ``blocking_timeout`` seconds (None: for
        ever). Returns True when taken now, False when ``owner`` already held it
        (re-entered); raises SessionLocked, naming the holder, when not taken in time."""
        k = self.keys.user(user_id)
        holder, timeout_ms = locking.holder_name(), max(1, int(timeout * 1000))
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            args = (owner, now_ms(), holder, timeout_ms)  # since: when it is taken
            row = yield Eval("lock_take", (k.lock, k.session), args, "acquiring a session lock")
            if row[0] != 0:
                return row[0] == 1
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise SessionLocked(
                    f"Session of user {user_id!r} is locked; not acquired within "
                    f"{blocking_timeout}s",
                    lock_info(user_id, row[1], row[2], False),
                )
            yield Sleep(0.05 if left is None else min(0.05, left))

    def plan_lock_release(self, user_id: str, owner: str, timeout: float) -> Plan[None]:
        """Release the user's lock if ``owner`` still holds it (lua/lock_release.lua); raises
        SessionLocked when it had expired meanwhile."""
        key = self.keys.user(user_id).lock
        if not (yield Eval("lock_release", (key,), (owner,), "releasing a lock")):
            raise SessionLocked(
                f"The lock on user {user_id!r} expired after {timeout}s, before it was "
                "released: another worker may have taken it meanwhile"
            )

    @contextmanager
    def lock(self, user_id: str, timeout: float, blocking_timeout: float | None) -> Iterator[None]:
        key = self.keys.user(user_id).lock
        owner = locking.token(key)
        reentered = owner is not None
        owner = owner or locking.new_token()
        taken = self.run(self.plan_lock_take(user_id, owner, timeout, blocking_timeout), _sleep)
        if not taken or reentered:
            # Re-entered by its owner: the outermost block releases it.
            with locking.holding(key, owner):
                yield
            return
        try:
            with locking.holding(key, owner):
                yield
        finally:
            self.run(self.plan_lock_release(user_id, owner, timeout))

    @asynccontextmanager
    async def alock(
        self, user_id: str, timeout: float, blocking_timeout: float | None
    ) -> AsyncIterator[None]:
        """``lock`` on the event loop's client: the same plans, so sync and async holders
        exclude each other; owned by the asyncio task (the context variable of locking.py),
        re-entrant within it."""
        key = self.keys.user(user_id).lock
        owner = locking.token(key)
        reentered = owner is not None
        owner = owner or locking.new_token()
        plan = self.plan_lock_take(user_id, owner, timeout, blocking_timeout)
        taken = await self.arun(plan, _asleep)
        if not taken or reentered:
            with locking.holding(key, owner):
                yield
            return
        try:
            with locking.holding(key, owner):
                yield
        finally:
            await self.arun(self.plan_lock_release(user_id, owner, timeout))

    def plan_current_lock(self, user_id: str) -> Plan[LockInfo | None]:
        """Who holds the user's lock and until when (``mine``: the running code), or None."""
        k = self.keys.user(user_id)
        row = yield Eval("lock_read", (k.lock,), (), "reading a session lock")
        if not row:
            return None
        mine = (locking.token(k.lock) or "-") == row[0][:32].decode("utf-8", "replace")
        return lock_info(user_id, row[0], row[1], mine)

    def current_lock(self, user_id: str) -> LockInfo | None:
        return self.run(self.plan_current_lock(user_id))

    def plan_is_locked(self, user_id: str) -> Plan[bool]:
        key = self.keys.user(user_id).lock
        return bool((yield Command(("EXISTS", key), "reading a session lock")))

    def is_locked(self, user_id: str) -> bool:
        return self.run(self.plan_is_locked(user_id))

    def ping(self) -> None:
        with translate_errors("pinging"):
            self.client.ping()

    # -- scheduled steps --------------------------------------------------------------------
    # A user's pending steps: the hash steps:<user> (step id -> JSON record), no TTL, plus the
    # shard's sweep index due. Outcomes: the bounded list step_outcomes:<user>. Firing goes
    # through transition() with step=..., which takes the record atomically.

    def plan_add_step(
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
        data: str | None = None,
    ) -> Plan[str | None]:
        """Store a pending step (``data``: its payload as JSON); returns the user's current
        slug (its recorded source)."""
        k = self.keys.user(user_id)
        args = (
            user_id, step_id, target, due_ms, created_ms, "1" if if_unchanged else "0", method,
            sweep_after_ms, data or "",
        )  # fmt: skip
        keys = (k.session, k.steps, k.shard.due)
        return decode((yield Eval("step_add", keys, args, "scheduling a step")))

    def plan_steps(self, user_id: str) -> Plan[dict[str, dict[str, Any]]]:
        """The user's pending steps: ``{step id: record}``."""
        key = self.keys.user(user_id).steps
        return _records((yield Command(("HGETALL", key), "reading scheduled steps")))

    def plan_retry_step(self, user_id: str, step_id: str, record: dict[str, Any]) -> Plan[bool]:
        """Replace a pending step's record (its retries counted); False if it is gone."""
        k = self.keys.user(user_id)
        args = (step_id, json.dumps(record))
        return bool((yield Eval("step_retry", (k.steps,), args, "retrying a scheduled step")))

    def retry_step(self, user_id: str, step_id: str, record: dict[str, Any]) -> bool:
        return self.run(self.plan_retry_step(user_id, step_id, record))

    def steps(self, user_id: str) -> dict[str, dict[str, Any]]:
        return self.run(self.plan_steps(user_id))

    def step(self, user_id: str, step_id: str) -> dict[str, Any] | None:
        with translate_errors("reading a scheduled step"):
            raw = self.client.hget(self.keys.user(user_id).steps, step_id)
        return None if raw is None else json.loads(raw)

    def steps_of(self, members: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        """The records of ``(user_id, step_id)`` pairs, in one round trip (None: gone)."""
        with translate_errors("reading scheduled steps"):
            pipe = self.client.pipeline(transaction=False)
            for user_id, step_id in members:
                pipe.hget(self.keys.user(user_id).steps, step_id)
            raw = pipe.execute()
        return [None if r is None else json.loads(r) for r in raw]

    def remove_steps(self, user_id: str, step_ids: Sequence[str], **options: Any) -> dict[str, Any]:
        return self.run(self.plan_remove_steps(user_id, step_ids, **options))

    def plan_remove_steps(
        self,
        user_id: str,
        step_ids: Sequence[str],
        *,
        now_ms: int,
        outcome: str,
        reason: str,
        keep: int,
        ttl_ms: int,
    ) -> Plan[dict[str, dict[str, Any]]]:
        """Remove the given pending steps (none given: all), recording ``outcome``; returns
        those removed by this call (not those already gone)."""
        k = self.keys.user(user_id)
        args: tuple[str | int, ...] = (user_id, now_ms, outcome, reason, keep, ttl_ms, *step_ids)
        keys = (k.steps, k.shard.due, k.step_outcomes)
        return _records((yield Eval("step_remove", keys, args, "removing scheduled steps")))

    def record_step_outcome(
        self, user_id: str, entry: Sequence[Any], *, keep: int, ttl_ms: int
    ) -> None:
        key = self.keys.user(user_id).step_outcomes
        with translate_errors("recording a step outcome"):
            pipe = self.client.pipeline(transaction=True)
            pipe.lpush(key, json.dumps(list(entry)))
            pipe.ltrim(key, 0, keep - 1)
            pipe.pexpire(key, ttl_ms)
            pipe.execute()

    def plan_step_outcomes(self, user_id: str, limit: int) -> Plan[list[list[Any]]]:
        """``[at ms, step id, target, outcome, reason]`` entries, newest first."""
        key = self.keys.user(user_id).step_outcomes
        raw = yield Command(("LRANGE", key, 0, limit - 1), "reading step outcomes")
        return [json.loads(item) for item in raw]

    def claim_overdue_steps(
        self, before_ms: int, next_look_ms: int, limit: int
    ) -> list[tuple[str, str]]:
        """For the sweep: ``(user_id, step_id)`` of indexed steps scored at or before
        ``before_ms``, at most ``limit`` a shard, re-scored to ``next_look_ms`` so no other
        sweep claims them meanwhile."""
        args = (before_ms, next_look_ms, limit)
        with translate_errors("sweeping scheduled steps"):
            parts = self.execute(
                self._each_shard("step_sweep", lambda s: (s.due,), args, "sweeping scheduled steps")
            )
        claimed = []
        for members in parts:
            for member in members:
                step_id, _, user_id = member.decode("utf-8", "replace").partition(":")
                claimed.append((user_id, step_id))
        return claimed

    def forget_step(self, user_id: str, step_id: str) -> None:
        """Drop a sweep index entry whose step is gone (applied, cancelled, deleted by hand)."""
        k = self.keys.user(user_id)
        with translate_errors("sweeping scheduled steps"):
            self.client.zrem(k.shard.due, f"{step_id}:{user_id}")

    def pending_steps_count(self) -> int:
        with translate_errors("counting scheduled steps"):
            pipe = self.client.pipeline(transaction=False)
            for shard in self.keys.shards:
                pipe.zcard(shard.due)
            return sum(pipe.execute())

    # -- operating: health checks and background bulk jobs -------------------------------------
    # (stealth_sessions.contrib.health_check, stealth_sessions.jobs)

    def first_due_steps(self, before_ms: int) -> list[tuple[str, str]]:
        """``(user_id, step_id)`` of each shard's first step in the sweep index, if scored at
        or before ``before_ms``: read-only, one ZRANGE a shard."""
        with translate_errors("reading scheduled steps"):
            pipe = self.client.pipeline(transaction=False)
            for shard in self.keys.shards:
                pipe.zrangebyscore(shard.due, "-inf", before_ms, start=0, num=1)
            found = []
            for members in pipe.execute():
                for member in members:
                    step_id, _, user_id = member.decode("utf-8", "replace").partition(":")
                    found.append((user_id, step_id))
        return found

    def save_bulk_job(
        self, job_id: str, fields: dict[str, str | int], ttl_s: int, *, active: bool | None = None
    ) -> None:
        """Write fields of a bulk job's record (one HSET: atomic) and its expiry. ``active``:
        True lists the job among the unfinished ones, scored by now (its last progress);
        False takes it off the list; None leaves the list alone."""
        key = self.keys.bulk_job(job_id)
        with translate_errors("saving a bulk job"):
            pipe = self.client.pipeline(transaction=False)
            if fields:
                pipe.hset(key, mapping=fields)
                pipe.expire(key, ttl_s)
            if active is not None:
                if active:
                    pipe.zadd(self.keys.bulk_jobs, {job_id: now_ms()})
                else:
                    pipe.zrem(self.keys.bulk_jobs, job_id)
            pipe.execute()

    def bulk_job(self, job_id: str) -> dict[str, str] | None:
        with translate_errors("reading a bulk job"):
            raw = self.client.hgetall(self.keys.bulk_job(job_id))
        return {decode(k): decode(v) for k, v in raw.items()} or None  # type: ignore[misc]

    @contextmanager
    def bulk_job_lease(self, job_id: str, ttl_ms: int) -> Iterator[Lease | None]:
        """Hold the lease of a bulk job's run for the ``with`` block: its key, set to a token
        of this run with ``SET NX PX`` (redis-py's Lock), expiring after ``ttl_ms`` unless
        renewed, deleted at the end if still this run's. Yields None, taking nothing, when
        another run holds it."""
        lock = self.client.lock(
            self.keys.bulk_job_lease(job_id),
            timeout=ttl_ms / 1000,
            blocking=False,
            thread_local=False,
        )
        with translate_errors("taking a bulk job's lease"):
            taken = lock.acquire()
        if not taken:
            yield None
            return
        try:
            yield Lease(lock)
        finally:
            # Lost (another run holds it now: not ours to delete) or Redis down: it expires.
            with suppress(LockError, *REDIS_ERRORS):
                lock.release()

    def bulk_job_leased(self, job_id: str) -> bool:
        """Whether a run holds the job's lease now."""
        with translate_errors("reading a bulk job"):
            return bool(self.client.exists(self.keys.bulk_job_lease(job_id)))

    def claim_idle_bulk_jobs(self, idle_ms: int, limit: int) -> list[str]:
        """For the sweep: the ids of up to ``limit`` listed jobs that saved no progress for
        ``idle_ms`` and whose lease is free (no run holds them). Every job looked at (these,
        and those a run holds) is re-scored to now, so that the next sweeps look at the
        others first and leave these alone for another ``idle_ms``; a job whose record is
        gone (expired, deleted by hand) leaves the list. Three bounded calls."""
        key = self.keys.bulk_jobs
        now = now_ms()
        with translate_errors("sweeping bulk jobs"):
            listed = self.client.zrangebyscore(key, "-inf", now - idle_ms, start=0, num=limit)
            if not listed:
                return []
            ids = [decode(member) or "" for member in listed]
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.exists(self.keys.bulk_job_lease(job_id))
                pipe.exists(self.keys.bulk_job(job_id))
            replies = pipe.execute()
            leased, present = replies[0::2], replies[1::2]
            gone = [job_id for job_id, here in zip(ids, present) if not here]
            seen = {job_id: now for job_id, here in zip(ids, present) if here}
            pipe = self.client.pipeline(transaction=False)
            if gone:
                pipe.zrem(key, *gone)
            if seen:
                pipe.zadd(key, seen, xx=True)  # xx: not back on the list if it just finished
            pipe.execute()
        return [job_id for job_id, held, here in zip(ids, leased, present) if here and not held]


class Lease:
    """A bulk job's lease, held by this run (RedisStore.bulk_job_lease)."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def renew(self) -> bool:
        """Make it last its whole duration again, from now; False if it was lost (it expired,
        and another run may hold it now)."""
        with translate_errors("renewing a bulk job's lease"):
            try:
                self._lock.reacquire()
            except LockNotOwnedError:
                return False
        return True


def slide_every(ttl_ms: int | None) -> int:
    """How long after the last slide a get slides the expiry again: a hundredth of the TTL,
    at most a minute. So a get is one MGET, not a write, for all but a few reads."""
    return min((ttl_ms or 0) // 100, 60_000)


def _settled(cur: bytes, meta: tuple[bytes, int, bytes, bytes] | None, ttl_ms: int | None) -> bool:
    """Whether a get can answer from ``meta`` (its data as read) with no script: the index
    knows the current slug and, with an expiry, it was slid recently enough."""
    if meta is None or meta[3] != cur:
        return False
    if ttl_ms is None:
        return meta[0] == b"0"
    return meta[0] == b"1" and now_ms() - activity_of(meta[2]) < slide_every(ttl_ms)


def _sleep(call: Sleep) -> None:
    time.sleep(call.seconds)


def _max_connections(client: Any) -> int:
    """The connections a redis.asyncio client may open (a cluster client: to each node)."""
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        return int(pool.max_connections)
    return int(client.connection_kwargs.get("max_connections", 100))


def _asleep(call: Sleep) -> Awaitable[None]:
    return asyncio.sleep(call.seconds)


def _many(script: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]], what: str) -> Batch:
    return Batch(tuple(Eval(script, tuple(k), tuple(a), what) for k, a in calls), what)


class PageMerge:
    """A page by activity, merged across the shards, asking each (lua/page.lua) only for what
    the merge may use: first twice its even share of the page; then, when the merge has used
    up what a shard gave while the shard may hold more, twice as many again (never more than
    the page still needs). So every call stays small whatever the page size, and most pages
    take one round trip. Holds no connection: ``calls()`` are the next calls to run
    (pipelined), ``feed()`` takes their answers in order, until ``calls()`` is empty."""

    def __init__(
        self, shards: Sequence[ShardKeys], scope: tuple[str, str, str], cursor: str, limit: int
    ) -> None:
        self.shards, self.scope, self.limit = shards, scope, limit
        share = max(4, 2 * -(-limit // len(shards)))
        # Shards to read next: (shard, after cursor, how many).
        self.reads: list[tuple[int, str, int]] = [(i, cursor, share) for i in range(len(shards))]
        # Each shard's next unused entry: (its order, shard, entries, position, size, full).
        self.heads: list[tuple[tuple[str, bytes], int, list[IndexEntry], int, int, bool]] = []
        self.entries: list[IndexEntry] = []

    def calls(self) -> list[tuple[tuple[str, str], tuple[str, str, str, int, str]]]:
        self._merge()
        scope, name, cut = self.scope
        return [
            (_index_keys(self.shards[shard]), (scope, name, after, size, cut))
            for shard, after, size in self.reads
        ]

    def feed(self, answers: Sequence[list[bytes]]) -> None:
        for (shard, _, size), members in zip(self.reads, answers):
            entries = IndexEntry.parse_all(members)
            if entries:  # (a full answer of members added by hand only: taken as the end)
                full = len(members) == size
                heapq.heappush(self.heads, (entries[0].order, shard, entries, 0, size, full))
        self.reads = []

    def _merge(self) -> None:
        while not self.reads and self.heads and len(self.entries) < self.limit:
            _, shard, entries, at, size, full = heapq.heappop(self.heads)
            self.entries.append(entries[at])
            if at + 1 < len(entries):
                nxt = entries[at + 1]
                heapq.heappush(self.heads, (nxt.order, shard, entries, at + 1, size, full))
            elif full and len(self.entries) < self.limit:
                more = min(2 * size, self.limit - len(self.entries))
                self.reads.append((shard, entries[-1].cursor, more))


def _index_keys(shard: ShardKeys) -> tuple[str, str]:
    return shard.sessions, shard.slugs


def _entries(entries: list[bytes], arrays: list[bytes | None]) -> list[Entry]:
    """Entries as lua/history.lua returns them."""
    out = []
    for entry, array in zip(entries, arrays):
        # Anything set by hand may be any bytes: decoded leniently, as slugs are.
        method, origin, source, target = json.loads(
            (array or entry[11:]).decode("utf-8", "replace")
        )
        out.append(Entry(int(entry[:11], 16), method, origin, source or None, target))
    return out


def _history(data: bytes, limit: int) -> list[tuple[int, bytes]]:
    """``(at ms, code)`` of the latest ``limit`` entries of a data value parse_data accepts
    (the code: of the shard's dictionary, or the JSON array itself when it starts with ``[``)."""
    _, _, rest = data.partition(b"|")
    length, _, after = rest[12:].partition(b"|")
    lines = after[int(length) :].split(b"\n")[1 : limit + 1]
    return [(int(line[:11], 16), line[11:]) for line in lines]


def _decoded(lines: list[tuple[int, bytes]], codes: HistoryCodes) -> list[Entry]:
    """Entries from ``(at ms, code)`` pairs; one whose code the dictionary lacks (a key
    changed by hand) is left out, never an error."""
    out = []
    for at_ms, code in lines:
        quad = _quad(code) if code[:1] == b"[" else codes.get(code)
        if quad is not None:
            out.append(Entry(at_ms, *quad))
    return out


def _quad(array: bytes) -> Quad:
    # Anything set by hand may be any bytes: decoded leniently, as slugs are.
    method, origin, source, target = json.loads(array.decode("utf-8", "replace"))
    return method, origin, source or None, target


def _records(flat: list[bytes] | dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """``{step id: record}`` from a steps hash's HGETALL (flat from a script, or a dict)."""
    if isinstance(flat, dict):
        return {decode(k): json.loads(v) for k, v in flat.items()}  # type: ignore[misc]
    return {decode(flat[i]): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}  # type: ignore[misc]


def from_cache(alias: str, namespace: str) -> RedisStore:
    """A store on the raw redis-py client of a cache (django-redis, with our ClusterClient or
    not, or Django's own RedisCache)."""
    from django.core.cache import caches

    from .cluster import async_client_factory, redis_client

    base = str(caches[alias].make_key(namespace))
    with translate_errors("connecting"):  # a cluster client connects when built
        client = redis_client(alias)
    return RedisStore(client, KeySpace(base), lambda: async_client_factory(alias)())


# -- a Stealth bot's Redis (import-stealth) --------------------------------------------------

_COMPANIONS = (b"-previous", b"-back_to")


class StealthSource:
    """Reads a live Stealth bot's keyspace (a single Redis): ``<id>`` holds the user's slug,
    ``<id>-previous`` and ``<id>-back_to`` theirs (``""``: none), each key with its own
    expiry. Read with SCAN in small batches and pipelined MGET/PTTL, so the bot keeps
    serving."""

    def __init__(self, client: Any) -> None:
        self.client = client
        lua = files(__package__).joinpath("lua", "stealth_delete.lua").read_text()
        self._delete = client.register_script(lua)

    @classmethod
    def from_url(cls, url: str) -> StealthSource:
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        except ValueError as exc:
            raise SessionStoreUnavailable(f"Unusable Redis URL {url!r}: {exc}") from exc
        source = cls(client)
        with translate_errors(f"connecting to {url}"):
            client.ping()
        return source

    def scan(self, cursor: int, count: int, is_slug: Callable[[str], bool]) -> StealthBatch:
        """One SCAN call from ``cursor`` and what its keys hold: a key is a user when it holds
        a string ``is_slug`` accepts; ``-previous``/``-back_to`` keys are read with their user."""
        with translate_errors("reading the Stealth keyspace"):
            cursor, keys = self.client.scan(cursor, count=count)
            ids = [key for key in keys if not key.endswith(_COMPANIONS)]
            pipe = self.client.pipeline(transaction=False)
            for key in ids:
                pipe.type(key)
                pipe.execute_command("MGET", key, key + b"-previous", key + b"-back_to")
                pipe.pttl(key)
            replies = pipe.execute()
        users, ignored = [], 0
        for i, key in enumerate(ids):
            kind, (cur, prev, back), pttl = replies[3 * i : 3 * i + 3]
            slug = None if kind != b"string" or cur is None else cur.decode("utf-8", "replace")
            user_id = key.decode("utf-8", "replace")
            if slug is None or not is_slug(slug) or user_id.encode() != key:
                ignored += 1
                continue
            users.append(
                StealthUser(
                    user_id,
                    slug,
                    decode(prev) or None,
                    decode(back) or None,
                    pttl if pttl > 0 else None,
                )
            )
        return StealthBatch(users, ignored, cursor)

    def delete(self, users: Sequence[tuple[str, str]]) -> int:
        """Delete the keys of ``(user id, slug imported)`` users whose slug is still that one;
        returns how many were deleted."""
        with translate_errors("deleting Stealth keys"):
            pipe = self.client.pipeline(transaction=False)
            for user_id, slug in users:
                keys = (user_id, f"{user_id}-previous", f"{user_id}-back_to")
                self._delete(keys=keys, args=(slug,), client=pipe)
            return sum(pipe.execute())
