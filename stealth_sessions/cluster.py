"""Redis Cluster for django-redis, and the raw redis-py client of any Redis cache.

``ClusterClient`` is a django-redis ``CLIENT_CLASS``::

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            # one node is enough to discover the others; list more in case it is down
            "LOCATION": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"],
            "OPTIONS": {
                "CLIENT_CLASS": "stealth_sessions.cluster.ClusterClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }

It builds one ``redis.cluster.RedisCluster`` per configuration and process, shared by every
thread (as django-redis shares its connection pools), and keeps the cache API working on a
cluster: operations on several keys go slot by slot, key listing and ``clear()`` visit every
primary. ``django_redis.get_redis_connection(alias)`` returns that ``RedisCluster``.

``redis_client(alias)`` is how the store gets the redis-py client of its cache, whichever of
django-redis (with this client or not) or Django's own ``RedisCache`` it is.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

__all__ = [
    "ClusterClient",
    "async_client_factory",
    "cluster_arguments",
    "cluster_from_urls",
    "redis_client",
]

# What django-redis turns into ConnectionInterrupted (so IGNORE_EXCEPTIONS and its re-raising
# of the original error behave the same), plus the cluster client's own errors, which do not
# derive from RedisError.
_CACHE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ResponseError,
    RedisClusterException,
    socket.timeout,
)


def cluster_from_urls(urls: Sequence[str], options: Mapping[str, Any]) -> RedisCluster:
    """A new ``RedisCluster`` on these node URLs with django-redis's ``OPTIONS`` (see
    ``cluster_arguments``); it reads the cluster's topology from the first node that answers."""
    nodes, kwargs = cluster_arguments(urls, options)
    return RedisCluster(startup_nodes=nodes, **kwargs)


def cluster_arguments(
    urls: Sequence[str], options: Mapping[str, Any]
) -> tuple[list[ClusterNode], dict[str, Any]]:
    """The startup nodes (every URL) and ``RedisCluster`` keyword arguments for a cache.

    Honoured: credentials in the URLs (the first URL's) or ``USERNAME``/``PASSWORD``;
    ``rediss://`` (TLS) and URL query options such as ``ssl_cert_reqs``;
    ``SOCKET_CONNECT_TIMEOUT`` and ``SOCKET_TIMEOUT``; ``CONNECTION_POOL_KWARGS`` (each node's
    connections, e.g. ``max_connections``); ``REDIS_CLIENT_KWARGS`` (``RedisCluster``'s own,
    e.g. ``retry`` (default: 2 retries), ``require_full_coverage``,
    ``load_balancing_strategy``). Options that choose django-redis's connection factory, pool,
    client or parser class do not apply.
    """
    if not urls:
        raise ImproperlyConfigured("A Redis Cluster cache needs at least one node URL.")
    nodes = []
    kwargs: dict[str, Any] = {}
    for url in urls:
        try:
            parsed = parse_url(url)
        except ValueError as exc:
            raise ImproperlyConfigured(f"Redis Cluster node {url!r}: {exc}") from exc
        if "path" in parsed:
            raise ImproperlyConfigured(
                f"Redis Cluster node {url!r}: a cluster is reached over TCP, not a unix socket."
            )
        if parsed.pop("db", 0) != 0:
            raise ImproperlyConfigured(
                f"Redis Cluster node {url!r}: a cluster has only database 0; "
                "drop the database number from the URL."
            )
        nodes.append(ClusterNode(parsed.pop("host", "localhost"), parsed.pop("port", 6379)))
        parsed.pop("connection_class", None)  # rediss:// says ssl=True, below
        if url.startswith("rediss://"):
            parsed["ssl"] = True
        for name, value in parsed.items():
            kwargs.setdefault(name, value)
    for option, name in (("USERNAME", "username"), ("PASSWORD", "password")):
        if options.get(option) and name not in kwargs:
            kwargs[name] = options[option]
    for option, name in (
        ("SOCKET_CONNECT_TIMEOUT", "socket_connect_timeout"),
        ("SOCKET_TIMEOUT", "socket_timeout"),
    ):
        value = options.get(option)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ImproperlyConfigured(f"OPTIONS[{option!r}] must be a number of seconds.")
        kwargs[name] = value
    kwargs.update(options.get("CONNECTION_POOL_KWARGS", {}))
    kwargs.update(options.get("REDIS_CLIENT_KWARGS", {}))
    # redis-py retries a failed command 10 times (re-reading the topology between tries, with
    # no pause): against a node that stopped answering that is 11 socket timeouts. Two
    # retries still follow a failover the cluster has finished, and bound the wait.
    kwargs.setdefault("retry", Retry(NoBackoff(), retries=2))
    return nodes, kwargs


_clusters: dict[str, RedisCluster] = {}
_clusters_lock = threading.Lock()


class ClusterClient(DefaultClient):
    """A django-redis client on Redis Cluster (``OPTIONS["CLIENT_CLASS"]``).

    ``LOCATION`` is one node URL, a list of them, or a comma-separated string. Single-key
    operations are django-redis's own, on the ``RedisCluster``; ``get_many`` and
    ``delete_many`` go slot by slot (non-atomic across slots, as ``set_many`` already is),
    ``keys``/``iter_keys``/``delete_pattern`` SCAN every primary, ``clear()`` flushes every
    primary. Commands on several keys of different slots (``sinter``, ``smove``...) need keys
    that share a hash tag, as on any cluster.
    """

    def __init__(self, server: Any, params: dict[str, Any], backend: Any) -> None:
        super().__init__(server, params, backend)
        urls = list(server) if isinstance(server, (list, tuple, set)) else str(server).split(",")
        self.node_urls: list[str] = [url.strip() for url in urls if url.strip()]
        self.cluster_options: dict[str, Any] = dict(params.get("OPTIONS", {}))
        # One RedisCluster per configuration and process: Django makes a cache (and so a
        # client) per thread, and each RedisCluster would discover the topology and open
        # its own connections.
        self.cluster_key = repr((self.node_urls, sorted(self.cluster_options.items())))

    # -- the client: one RedisCluster, whatever django-redis's replica index says ------------

    def get_next_client_index(self, write: bool = True, tried: list[int] | None = None) -> int:
        return 0

    def get_client(self, write: bool = True, tried: list[int] | None = None) -> RedisCluster:
        cluster = _clusters.get(self.cluster_key)
        if cluster is None:
            with _clusters_lock:
                cluster = _clusters.get(self.cluster_key)
                if cluster is None:
                    cluster = _clusters[self.cluster_key] = self.connect()
        return cluster

    def get_client_with_index(
        self, write: bool = True, tried: list[int] | None = None
    ) -> tuple[RedisCluster, int]:
        return self.get_client(write=write, tried=tried), 0

    def connect(self, index: int = 0) -> RedisCluster:
        return cluster_from_urls(self.node_urls, self.cluster_options)

    def disconnect(self, index: int = 0, client: Any = None) -> None:
        """Close the connections to every node (reopened on next use; the topology is kept)."""
        cluster = client if client is not None else _clusters.get(self.cluster_key)
        if cluster is None:
            return
        for node in cluster.get_nodes():
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()

    def do_close_clients(self) -> None:
        self.disconnect()

    # -- operations on several keys, or on the whole keyspace ------------------------------

    def get_many(self, keys: Any, version: int | None = None, client: Any = None) -> dict[Any, Any]:
        if client is None:
            client = self.get_client(write=False)
        if not keys:
            return {}
        originals = {self.make_key(key, version=version): key for key in keys}
        try:
            values = client.mget_nonatomic(list(originals))
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return {
            originals[key]: self.decode(value)
            for key, value in zip(originals, values)
            if value is not None
        }

    def delete_many(self, keys: Any, version: int | None = None, client: Any = None) -> int:
        if client is None:
            client = self.get_client(write=True)
        made = [self.make_key(key, version=version) for key in keys]
        if not made:
            return 0
        try:
            return int(client.delete(*made))  # RedisCluster.delete: one DEL per slot
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc

    def scan_primaries(
        self, client: RedisCluster, pattern: str, count: int | None
    ) -> Iterator[Any]:
        return client.scan_iter(match=pattern, count=count, target_nodes=RedisCluster.PRIMARIES)

    def iter_keys(
        self,
        search: str,
        itersize: int | None = None,
        client: Any = None,
        version: int | None = None,
    ) -> Iterator[str]:
        if client is None:
            client = self.get_client(write=False)
        pattern = self.make_pattern(search, version=version)
        for key in _scan_primaries(client, pattern, itersize):
            yield self.reverse_key(key.decode() if isinstance(key, bytes) else key)

    def keys(self, search: str, version: int | None = None, client: Any = None) -> list[Any]:
        """Like django-redis's, but with SCAN on every primary: KEYS would ask one node."""
        try:
            return list(self.iter_keys(search, version=version, client=client))
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        client: Any = None,
        itersize: int | None = None,
    ) -> int:
        if client is None:
            client = self.get_client(write=True)
        made = self.make_pattern(pattern, version=version, prefix=prefix)
        try:
            found = list(_scan_primaries(client, made, itersize))
            deleted = 0
            for start in range(0, len(found), 500):
                deleted += int(client.delete(*found[start : start + 500]))
            return deleted
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc

    def clear(self, client: Any = None) -> None:
        if client is None:
            client = self.get_client(write=True)
        try:
            client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc

    def set_many(
        self,
        data: dict[Any, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
        client: Any = None,
    ) -> None:
        """One SET per key, pipelined: one round trip per node, never a cross-slot MSET."""
        if client is None:
            client = self.get_client(write=True)
        try:
            pipeline = client.pipeline(transaction=False)
            for key, value in data.items():
                self.set(key, value, timeout, version=version, client=pipeline)
            pipeline.execute()
        except _CACHE_ERRORS as exc:
            raise ConnectionInterrupted(connection=client) from exc


def _scan_primaries(client: RedisCluster, pattern: str, count: int | None) -> Iterator[Any]:
    return client.scan_iter(match=pattern, count=count, target_nodes=RedisCluster.PRIMARIES)


# -- the raw client of any Redis cache -----------------------------------------------------

_django_clients: dict[str, redis.Redis] = {}


def redis_client(alias: str) -> redis.Redis | RedisCluster:
    """The redis-py client behind cache ``alias``, for writes.

    django-redis (any ``CLIENT_CLASS``; a ``RedisCluster`` with ``ClusterClient``): its own,
    via ``get_redis_connection``. Django's ``django.core.cache.backends.redis.RedisCache``: a
    client on the first ``LOCATION`` (where that backend writes), with ``OPTIONS`` as that
    backend uses them (connection pool arguments, ``pool_class``, ``parser_class``); built
    here once per alias, and again after ``CACHES`` changes.
    """
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
    from django_redis import get_redis_connection
    from django_redis.cache import RedisCache as DjangoRedisRedisCache

    cache = caches[alias]
    if isinstance(cache, DjangoRedisRedisCache):
        return get_redis_connection(alias, write=True)
    if isinstance(cache, DjangoRedisCache):
        client = _django_clients.get(alias)
        if client is None:
            client = _django_clients[alias] = _client_like_djangos(alias)
        return client
    raise ImproperlyConfigured(
        f"The cache {alias!r} ({type(cache).__module__}.{type(cache).__qualname__}) is not a "
        "Redis cache: use 'django_redis.cache.RedisCache' (for Redis Cluster, with OPTIONS "
        "'CLIENT_CLASS': 'stealth_sessions.cluster.ClusterClient') or "
        "'django.core.cache.backends.redis.RedisCache'."
    )


def _client_like_djangos(alias: str) -> redis.Redis:
    """What Django's RedisCache builds for writes, built from its settings."""
    from django.conf import settings

    config: dict[str, Any] = settings.CACHES[alias]
    location = config.get("LOCATION", "")
    servers = re.split("[;,]", location) if isinstance(location, str) else list(location)
    options: dict[str, Any] = dict(config.get("OPTIONS", {}))
    options.pop("serializer", None)  # the cache's values, not the connection
    pool_class = options.pop("pool_class", None) or redis.ConnectionPool
    if isinstance(pool_class, str):
        pool_class = import_string(pool_class)
    parser_class = options.pop("parser_class", None) or redis.connection.DefaultParser
    if isinstance(parser_class, str):
        parser_class = import_string(parser_class)
    pool = pool_class.from_url(servers[0], parser_class=parser_class, **options)
    return redis.Redis(connection_pool=pool)


# -- the redis.asyncio client of the same cache (the async service) ---------------------------


def async_client_factory(alias: str) -> Callable[[], Any]:
    """A function building a new redis.asyncio client on the same server(s) as cache ``alias``,
    from its ``LOCATION`` and ``OPTIONS`` read now: a ``redis.asyncio.RedisCluster`` for
    ``ClusterClient`` (the same startup nodes, credentials, TLS, timeouts and retries as
    ``cluster_arguments``), otherwise a ``redis.asyncio.Redis`` on the URL the sync client
    writes to (django-redis: the first ``LOCATION``, with ``PASSWORD``/``USERNAME``, the
    socket timeouts, ``CONNECTION_POOL_KWARGS``; Django's RedisCache: its connection
    ``OPTIONS``). The store builds one per event loop. Sentinel is not supported."""
    from django.conf import settings

    config: dict[str, Any] = settings.CACHES[alias]
    location = config.get("LOCATION", "")
    urls = (
        [u.strip() for u in re.split("[;,]", location) if u.strip()]
        if isinstance(location, str)
        else list(location)
    )
    options: dict[str, Any] = dict(config.get("OPTIONS", {}))
    backend = config.get("BACKEND", "")
    if backend == "django.core.cache.backends.redis.RedisCache" or _is_djangos(backend):
        options.pop("serializer", None)
        options.pop("pool_class", None)
        options.pop("parser_class", None)
        return lambda: _async_redis(urls[0], options)
    client_class = options.get("CLIENT_CLASS", "django_redis.client.DefaultClient")
    cls = import_string(client_class) if isinstance(client_class, str) else client_class
    if isinstance(cls, type) and issubclass(cls, ClusterClient):
        nodes, kwargs = cluster_arguments(urls, options)
        if isinstance(kwargs.get("retry"), Retry):
            retry = kwargs["retry"]
            kwargs["retry"] = AsyncRetry(NoBackoff(), retries=retry.get_retries())
        startup = [AsyncClusterNode(node.host, node.port) for node in nodes]
        return lambda: AsyncRedisCluster(startup_nodes=startup, **kwargs)
    if "Sentinel" in getattr(cls, "__name__", ""):
        raise ImproperlyConfigured(
            f"The async service does not support the Sentinel client of cache {alias!r}: use "
            "the sync service, or a django-redis cache on the master's URL."
        )
    kwargs = {}
    for option, name in (
        ("SOCKET_CONNECT_TIMEOUT", "socket_connect_timeout"),
        ("SOCKET_TIMEOUT", "socket_timeout"),
        ("PASSWORD", "password"),
        ("USERNAME", "username"),
    ):
        if options.get(option) is not None:
            kwargs[name] = options[option]
    kwargs.update(options.get("CONNECTION_POOL_KWARGS", {}))
    return lambda: _async_redis(urls[0], kwargs)


def _async_redis(url: str, kwargs: dict[str, Any]) -> redis.asyncio.Redis:
    """A redis.asyncio client of at most ``max_connections`` connections (default 100); the
    store makes further concurrent calls wait for one (RedisStore.aclient)."""
    kwargs = dict(kwargs)
    kwargs.setdefault("max_connections", 100)
    return redis.asyncio.Redis.from_url(url, **kwargs)


def _is_djangos(backend: Any) -> bool:
    from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, DjangoRedisCache)


@receiver(setting_changed)
def _forget_clients(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        for client in _django_clients.values():
            client.connection_pool.disconnect()
        _django_clients.clear()
