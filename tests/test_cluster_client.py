"""stealth_sessions.cluster: django-redis's cache API on a real Redis Cluster (ClusterClient),
and redis_client(), the raw client of any Redis cache.

These tests start clusters of their own (the suite's, in a cluster run, is left alone), so
they run the same in both modes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django_redis import get_redis_connection
from redis.cluster import RedisCluster as RedisClusterClient
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    RedisClusterException,
    TimeoutError,
)

from botproject.redis_server import RedisCluster, RedisServer
from stealth_sessions.cluster import cluster_arguments, redis_client

PASSWORD = "s3cret"
TIMEOUT = 0.5
CLIENT = "stealth_sessions.cluster.ClusterClient"


def cluster_cache(urls: list[str] | str, **options: object) -> dict[str, object]:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": urls,
        "KEY_PREFIX": "cc",
        "OPTIONS": {
            "CLIENT_CLASS": CLIENT,
            "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
            "SOCKET_TIMEOUT": TIMEOUT,
            **options,
        },
    }


@pytest.fixture(scope="module")
def nodes() -> Iterator[RedisCluster]:
    """A 3-master cluster with a password, for this module."""
    cluster = RedisCluster(password=PASSWORD).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cache(settings, nodes):
    """The cache 'clustered': django-redis with ClusterClient on ``nodes``; emptied after."""
    settings.CACHES = {**settings.CACHES, "clustered": cluster_cache(nodes.urls, PASSWORD=PASSWORD)}
    yield caches["clustered"]
    get_redis_connection("clustered").flushall(target_nodes=RedisClusterClient.PRIMARIES)


def keys_on_every_primary(cache, count: int = 30) -> list[str]:
    """``count`` keys whose cache keys fall on more than one slot, and on every primary."""
    cluster = get_redis_connection("clustered")
    keys = [f"key{i}" for i in range(count)]
    owners = {cluster.get_node_from_key(cache.make_key(k)).name for k in keys}
    assert owners == {node.name for node in cluster.get_primaries()}
    return keys


def test_get_redis_connection_returns_the_redis_cluster(cache):
    client = get_redis_connection("clustered", write=True)
    assert isinstance(client, RedisClusterClient)
    assert len(client.get_primaries()) == 3
    assert get_redis_connection("clustered", write=False) is client


def test_one_redis_cluster_per_process_shared_by_threads(cache):
    # Django makes a cache (and a django-redis client) per thread.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(get_redis_connection("clustered")))
    thread.start()
    thread.join()
    assert seen == [get_redis_connection("clustered")]


def test_set_get_add_delete_and_has_key(cache):
    assert cache.set("a", {"x": 1}) is True
    assert cache.get("a") == {"x": 1}
    assert cache.get("missing", "default") == "default"
    assert cache.has_key("a") and not cache.has_key("missing")
    assert cache.add("a", 2) is False and cache.add("b", 2) is True
    assert cache.delete("a") is True and cache.get("a") is None


def test_get_many_set_many_and_delete_many_across_slots(cache):
    keys = keys_on_every_primary(cache)
    cache.set_many({k: i for i, k in enumerate(keys)}, timeout=60)
    assert cache.get_many([*keys, "missing"]) == {k: i for i, k in enumerate(keys)}
    assert cache.delete_many(keys[:20]) == 20
    assert cache.get_many(keys) == {k: i for i, k in enumerate(keys) if i >= 20}
    assert cache.get_many([]) == {} and cache.delete_many([]) == 0


def test_incr_decr_and_expiry(cache):
    cache.set("n", 10, timeout=None)
    assert cache.incr("n", 5) == 15 and cache.decr("n") == 14
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert cache.ttl("n") is None
    assert cache.expire("n", 100) is True and 0 < cache.ttl("n") <= 100
    assert cache.persist("n") is True and cache.ttl("n") is None
    assert cache.touch("n", 50) is True and 0 < cache.pttl("n") <= 50_000
    assert cache.ttl("missing") == 0


def test_keys_iter_keys_and_delete_pattern_visit_every_primary(cache):
    keys = keys_on_every_primary(cache)
    cache.set_many(dict.fromkeys(keys, 1))
    cache.set("other", 1)
    assert sorted(cache.keys("key*")) == sorted(keys)
    assert sorted(cache.iter_keys("key*")) == sorted(keys)
    assert cache.delete_pattern("key*") == len(keys)
    assert cache.keys("*") == ["other"]


def test_clear_empties_every_primary(cache):
    cache.set_many(dict.fromkeys(keys_on_every_primary(cache), 1))
    cache.clear()
    primaries = get_redis_connection("clustered").get_primaries()
    assert [node.redis_connection.dbsize() for node in primaries] == [0, 0, 0]


def test_lock_and_incr_version(cache):
    with cache.lock("resource", timeout=5):
        assert cache.has_key("resource")
    assert not cache.has_key("resource")
    cache.set("v", "x")
    assert cache.incr_version("v") == 2
    assert cache.get("v", version=2) == "x" and cache.get("v") is None


def test_socket_timeouts_reach_every_node_connection(cache):
    cache.set("a", 1)
    for node in get_redis_connection("clustered").get_nodes():
        kwargs = node.redis_connection.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == TIMEOUT
        assert kwargs["socket_connect_timeout"] == TIMEOUT
        assert kwargs["password"] == PASSWORD


def test_location_as_one_comma_separated_string_with_the_password_in_the_url(settings, nodes):
    urls = [url.replace("redis://", f"redis://:{PASSWORD}@") for url in nodes.urls]
    settings.CACHES = {**settings.CACHES, "clustered": cluster_cache(",".join(urls))}
    caches["clustered"].set("a", 1)
    assert caches["clustered"].get("a") == 1
    caches["clustered"].clear()


def test_a_wrong_password_fails_at_the_first_call_with_an_authentication_error(settings, nodes):
    settings.CACHES = {**settings.CACHES, "clustered": cluster_cache(nodes.urls, PASSWORD="no")}
    # redis-py reads the topology when the RedisCluster is made: no node would let it in.
    with pytest.raises(RedisClusterException) as caught:
        caches["clustered"].get("a")
    assert isinstance(caught.value.__cause__, AuthenticationError)


# -- a node that stops, or stops answering ---------------------------------------------------


@pytest.fixture(scope="module")
def doomed_nodes() -> Iterator[RedisCluster]:
    """A cluster whose nodes the tests stop (node 0) or freeze (node 1); node 2 stays up."""
    cluster = RedisCluster().start()
    yield cluster
    for node in cluster.nodes:
        if node.process and node.process.poll() is None:
            os.kill(node.process.pid, signal.SIGCONT)
    cluster.stop()


def key_on(cache, node_port: int) -> str:
    cluster = get_redis_connection("doomed")
    for i in range(1000):
        if cluster.get_node_from_key(cache.make_key(f"k{i}")).port == node_port:
            return f"k{i}"
    raise AssertionError("no key found for that node")


@pytest.fixture
def doomed(settings, doomed_nodes):
    settings.CACHES = {**settings.CACHES, "doomed": cluster_cache(doomed_nodes.urls)}
    return caches["doomed"], doomed_nodes


def elapsed(call) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_stopped_node_is_a_connection_error_at_once_and_the_others_still_answer(doomed):
    cache, cluster = doomed
    lost, alive = key_on(cache, cluster.nodes[0].port), key_on(cache, cluster.nodes[2].port)
    cluster.nodes[0].stop()
    took, error = elapsed(lambda: cache.set(lost, 1))
    assert isinstance(error, ConnectionError) and took < 3 * TIMEOUT
    cache.set(alive, 1)
    assert cache.get(alive) == 1


def test_a_frozen_node_is_a_timeout_within_three_socket_timeouts(doomed):
    cache, cluster = doomed
    frozen = key_on(cache, cluster.nodes[1].port)
    os.kill(cluster.nodes[1].process.pid, signal.SIGSTOP)
    try:
        took, error = elapsed(lambda: cache.get(frozen))
    finally:
        os.kill(cluster.nodes[1].process.pid, signal.SIGCONT)
    assert isinstance(error, TimeoutError)
    assert took < 3 * TIMEOUT + 1  # a try and two retries, each one socket timeout


# -- how a cache's options become RedisCluster's arguments -----------------------------------


def test_arguments_every_url_is_a_startup_node_and_the_url_credentials_win():
    nodes, kwargs = cluster_arguments(
        ["redis://u:p@10.0.0.1:7000", "redis://10.0.0.2:7001/0"],
        {"USERNAME": "other", "PASSWORD": "other", "SOCKET_TIMEOUT": 2},
    )
    assert [(n.host, n.port) for n in nodes] == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert (kwargs["username"], kwargs["password"], kwargs["socket_timeout"]) == ("u", "p", 2)
    assert "ssl" not in kwargs and "db" not in kwargs


def test_arguments_rediss_means_tls_and_options_pass_through():
    nodes, kwargs = cluster_arguments(
        ["rediss://10.0.0.1:7000?ssl_cert_reqs=none"],
        {
            "PASSWORD": "pw",
            "CONNECTION_POOL_KWARGS": {"max_connections": 7},
            "REDIS_CLIENT_KWARGS": {"require_full_coverage": False},
        },
    )
    assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "none"
    assert kwargs["password"] == "pw" and kwargs["max_connections"] == 7
    assert kwargs["require_full_coverage"] is False
    assert kwargs["retry"].get_retries() == 2


@pytest.mark.parametrize(
    "urls,options,problem",
    [
        (["redis://10.0.0.1:7000/1"], {}, "only database 0"),
        (["unix:///tmp/redis.sock"], {}, "unix socket"),
        (["http://10.0.0.1:7000"], {}, "http://10.0.0.1:7000"),
        ([], {}, "at least one node"),
        (["redis://10.0.0.1:7000"], {"SOCKET_TIMEOUT": "2"}, "SOCKET_TIMEOUT"),
    ],
)
def test_arguments_mistakes_are_improperly_configured(urls, options, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        cluster_arguments(urls, options)


# -- redis_client(alias) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def single() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_redis_client_of_a_cluster_cache_is_its_redis_cluster(cache):
    assert redis_client("clustered") is get_redis_connection("clustered")


def test_redis_client_of_a_django_redis_cache(settings, single):
    settings.CACHES = {
        **settings.CACHES,
        "plain": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": single.url},
    }
    client = redis_client("plain")
    assert isinstance(client, redis.Redis) and client is get_redis_connection("plain")
    caches["plain"].set("a", 1)
    assert client.exists(caches["plain"].make_key("a")) == 1


def test_redis_client_of_djangos_own_redis_cache(settings, single):
    second = f"redis://127.0.0.1:{single.port}/5"
    settings.CACHES = {
        **settings.CACHES,
        "django": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{single.url.replace('/0', '/3')},{second}",
            "OPTIONS": {"socket_timeout": 0.7, "pool_class": "redis.BlockingConnectionPool"},
        },
    }
    client = redis_client("django")
    assert isinstance(client, redis.Redis) and redis_client("django") is client
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["socket_timeout"]) == (3, 0.7)
    caches["django"].set("a", 1)  # written to the first LOCATION, as Django writes
    assert client.exists(caches["django"].make_key("a")) == 1


def test_redis_client_of_djangos_redis_cache_follows_a_change_of_caches(settings, single):
    config = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": single.url}
    settings.CACHES = {**settings.CACHES, "django": config}
    before = redis_client("django")
    settings.CACHES = {**settings.CACHES, "django": {**config, "LOCATION": single.url[:-1] + "4"}}
    after = redis_client("django")
    assert after is not before and after.connection_pool.connection_kwargs["db"] == 4


def test_redis_client_of_another_backend_is_improperly_configured(settings):
    settings.CACHES = {
        **settings.CACHES,
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    with pytest.raises(ImproperlyConfigured) as caught:
        redis_client("local")
    assert "LocMemCache" in str(caught.value)
    assert "django_redis.cache.RedisCache" in str(caught.value) and CLIENT in str(caught.value)
    assert "django.core.cache.backends.redis.RedisCache" in str(caught.value)
