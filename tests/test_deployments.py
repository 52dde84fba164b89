"""The app runs unchanged on a single Redis, on Sentinel, with Django's own RedisCache and on
Redis Cluster, with one key layout; a cluster node that stops answering mid-test gives
SessionStoreUnavailable, never a wrong answer.

Every deployment here is started by this module (module-scoped, so each starts once), so it
runs the same in the suite's single-Redis and cluster modes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from redis.cluster import RedisCluster as RedisClusterClient
from redis.cluster import key_slot
from redis.sentinel import SentinelConnectionPool

from botproject.redis_server import RedisCluster, RedisSentinel, RedisServer
from stealth_sessions.checks import check_settings
from stealth_sessions.exceptions import SessionStoreUnavailable
from stealth_sessions.service import SessionService, get_session_service

TIMEOUT = 0.5
PREFIX = "dep"
APP = {"FLOW_MAP": "tests.flows.flow_map", "SCHEDULER": None}

PLAIN = [f"u{n:02d}" for n in range(24)]
WHATSAPP = [f"whatsapp:+4477009000{n:02d}" for n in range(12)]
USERS = PLAIN + WHATSAPP


def django_redis(location: str | list[str], **options: Any) -> dict[str, Any]:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": PREFIX,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": TIMEOUT, "SOCKET_TIMEOUT": TIMEOUT, **options},
    }


# -- the deployments: each fixture starts its servers and gives the cache that reaches them ---


@pytest.fixture(scope="module")
def single_redis() -> Iterator[dict[str, Any]]:
    server = RedisServer().start()
    yield django_redis(server.url)
    server.stop()


@pytest.fixture(scope="module")
def sentinel() -> Iterator[dict[str, Any]]:
    deployment = RedisSentinel().start()
    yield django_redis(
        deployment.url,
        CLIENT_CLASS="django_redis.client.SentinelClient",
        CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
        CONNECTION_POOL_CLASS="redis.sentinel.SentinelConnectionPool",
        SENTINELS=deployment.sentinels,
    )
    deployment.stop()


@pytest.fixture(scope="module")
def djangos_redis_cache() -> Iterator[dict[str, Any]]:
    server = RedisServer().start()
    yield {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": server.url,
        "KEY_PREFIX": PREFIX,
        # Django's RedisCache hands its OPTIONS to redis-py's connection pool as they are.
        "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT},
    }
    server.stop()


@pytest.fixture(scope="module")
def cluster_nodes() -> Iterator[RedisCluster]:
    nodes = RedisCluster().start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def cluster(cluster_nodes: RedisCluster) -> dict[str, Any]:
    return django_redis(cluster_nodes.urls, CLIENT_CLASS="stealth_sessions.cluster.ClusterClient")


DEPLOYMENTS = ["single_redis", "sentinel", "djangos_redis_cache", "cluster"]


@pytest.fixture(params=DEPLOYMENTS)
def deployed(request, settings) -> Iterator[SessionService]:
    """The service on one deployment (its cache is 'default'); emptied after the test."""
    settings.CACHES = {"default": request.getfixturevalue(request.param)}
    settings.STEALTH_SESSIONS = APP
    yield get_session_service()
    caches["default"].clear()


# -- the same scenario, the same results, everywhere -----------------------------------------


def move_users(service: SessionService) -> dict[str, str]:
    """Every user to hello->say_hello, then a third on to hello->ask_name (state= alone) and a
    third to goodbye's first state (flow= alone); u00 through a back-to. Returns the slugs."""
    where = {}
    for i, user in enumerate(USERS):
        service.step_to(user, slug="hello->say_hello")
        if i % 3 == 1:
            service.update_session_to(user, state="ask_name")
        elif i % 3 == 2:
            service.step_to(user, flow="goodbye")
        where[user] = ("hello->say_hello", "hello->ask_name", "goodbye->say_bye")[i % 3]
    service.set_back_to("u00", slug="follow_up->nudge")
    service.step_to("u00", slug="hello->get_name")
    service.step_back("u00")
    where["u00"] = "follow_up->nudge"
    return where


def every_page(service: SessionService, limit: int, **query: Any) -> tuple[list[str], int]:
    """The user ids of a listing, following its cursors; and how many pages it took."""
    found, cursor, pages = [], None, 0
    while True:
        page, cursor = service.list_sessions(cursor=cursor, limit=limit, **query)
        found += [session.user_id for session in page]
        pages += 1
        if cursor is None:
            return found, pages


def users_at(where: dict[str, str], test: Callable[[str, str], bool]) -> set[str]:
    return {user for user, slug in where.items() if test(user, slug)}


def test_the_same_scenario_gives_the_same_results_on_every_deployment(deployed):
    service = deployed
    where = move_users(service)

    u01 = service.get("u01")
    assert (u01.slug, u01.flow, u01.state) == ("hello->ask_name", "hello", "ask_name")
    assert (u01.previous, u01.back_to, u01.version) == ("hello->say_hello", None, 2)
    assert service.update_session_to("u01", slug="hello->ask_name").version == 2
    assert service.step_to("u02", slug="goodbye->say_bye").version == 2  # slid, not written
    u00 = service.get("u00")
    assert (u00.slug, u00.previous, u00.back_to) == (
        "follow_up->nudge",
        "hello->get_name",
        "follow_up->nudge",
    )
    assert [(t.source, t.target, t.method) for t in service.history("u00")] == [
        ("hello->get_name", "follow_up->nudge", "step_back"),
        ("hello->say_hello", "hello->get_name", "step_to"),
        (None, "hello->say_hello", "step_to"),
    ]
    assert service.get("nobody") is None
    assert service.count_by_state() == {
        "hello->say_hello": 11,
        "hello->ask_name": 12,
        "goodbye->say_bye": 12,
        "follow_up->nudge": 1,
    }

    assert service.reset("u03") is True
    assert service.reset(WHATSAPP[2]) is True
    assert service.reset("u03") is False
    assert service.get("u03") is None and service.history("u03") == []
    del where["u03"], where[WHATSAPP[2]]
    assert service.count_by_state() == {
        "hello->say_hello": 10,
        "hello->ask_name": 12,
        "goodbye->say_bye": 11,
        "follow_up->nudge": 1,
    }

    listings = {
        # query: (page size, who is listed, at least this many pages)
        (("slug", "hello->ask_name"),): (5, lambda u, s: s == "hello->ask_name", 3),
        (("flow", "hello"),): (7, lambda u, s: s.startswith("hello->"), 4),
        (): (10, lambda u, s: True, 4),
        (("user_id_prefix", "whatsapp:+44"),): (5, lambda u, s: u.startswith("whatsapp:"), 3),
        (("user_id_prefix", "u1"),): (4, lambda u, s: u.startswith("u1"), 3),
        (("user_id_prefix", "whatsapp:"), ("slug", "goodbye->say_bye")): (
            2,
            lambda u, s: u.startswith("whatsapp:") and s == "goodbye->say_bye",
            2,
        ),
    }
    for query, (limit, test, fewest_pages) in listings.items():
        found, pages = every_page(service, limit, **dict(query))
        assert sorted(found) == sorted(users_at(where, test)), query
        assert len(found) == len(set(found)), query
        assert pages >= fewest_pages, query
    first, _ = service.list_sessions(limit=50)
    assert {session.user_id: session.slug for session in first} == where

    cache = caches["default"]
    cache.set("plain", {"a": [1, 2]}, 60)
    assert cache.get("plain") == {"a": [1, 2]}
    assert cache.get("missing") is None


def test_the_store_writes_through_the_deployments_own_client(deployed, request):
    client = deployed.store.client
    deployment = request.node.callspec.params["deployed"]
    if deployment == "cluster":
        assert isinstance(client, RedisClusterClient)
    else:
        assert isinstance(client, redis.Redis)
        is_sentinel = isinstance(client.connection_pool, SentinelConnectionPool)
        assert is_sentinel == (deployment == "sentinel")
    deployed.step_to("u", slug="hello->say_hello")
    base = caches["default"].make_key("stealth")  # the cache's KEY_PREFIX and VERSION apply
    assert deployed.store.keys.user("u").session.startswith(f"{base}:{{")


def test_the_system_checks_accept_every_deployment(deployed):
    assert check_settings() == []


# -- Redis Cluster: one user, one node, one slot ---------------------------------------------


def node_clients(nodes: RedisCluster) -> dict[int, redis.Redis]:
    """A plain client on each node, by port (every node is a primary: no replicas)."""
    return {node.port: redis.Redis(port=node.port, socket_timeout=2) for node in nodes.nodes}


def keys_of(user: str, clients: dict[int, redis.Redis]) -> dict[int, list[bytes]]:
    """The keys of ``user`` on each node that holds any, found as an operator would."""
    found = {}
    for port, client in clients.items():
        keys = list(client.scan_iter(match=f"*:{user}", count=1000))
        if keys:
            found[port] = keys
    return found


@pytest.fixture
def clustered(settings, cluster, cluster_nodes) -> Iterator[dict[int, redis.Redis]]:
    """The app on the module's cluster, and a plain client on each of its nodes."""
    settings.CACHES = {"default": cluster}
    settings.STEALTH_SESSIONS = APP
    clients = node_clients(cluster_nodes)
    yield clients
    for client in clients.values():
        client.close()
    caches["default"].clear()


def test_on_a_cluster_each_users_keys_live_on_one_node_in_one_slot(clustered):
    move_users(get_session_service())
    nodes_used = set()
    for user in USERS:
        found = keys_of(user, clustered)
        assert len(found) == 1, (user, found)
        [(port, keys)] = found.items()
        kinds = {key.decode()[: -len(user) - 1].rpartition(":")[2] for key in keys}
        assert {"session", "data"} <= kinds, keys
        assert len({key_slot(key) for key in keys}) == 1, keys
        assert clustered[port].cluster("keyslot", keys[0]) == key_slot(keys[0])
        nodes_used.add(port)
    assert len(nodes_used) > 1
    [u00] = keys_of("u00", clustered).values()
    assert len(u00) == 4  # session, previous, back_to, data


# -- a cluster node that stops answering, or stops -------------------------------------------


def lose_a_node_later() -> RedisCluster:
    """A cluster whose node timeout is longer than the tests: its other nodes do not mark a
    lost node failed unless a test shortens it (then, with no replica to promote, the whole
    cluster goes down)."""
    return RedisCluster(node_timeout_ms=60_000).start()


def service_on(settings, nodes: RedisCluster) -> SessionService:
    settings.CACHES = {
        "default": django_redis(nodes.urls, CLIENT_CLASS="stealth_sessions.cluster.ClusterClient")
    }
    settings.STEALTH_SESSIONS = APP
    return get_session_service()


@pytest.fixture(scope="module")
def freezable_nodes() -> Iterator[RedisCluster]:
    """A cluster for the tests that freeze a node and wake it up again."""
    nodes = lose_a_node_later()
    yield nodes
    for node in nodes.nodes:
        if node.process and node.process.poll() is None:
            os.kill(node.process.pid, signal.SIGCONT)
    nodes.stop()


@pytest.fixture
def freezable(settings, freezable_nodes) -> tuple[SessionService, RedisCluster]:
    service = service_on(settings, freezable_nodes)
    caches["default"].clear()
    return service, freezable_nodes


@pytest.fixture
def stoppable(settings) -> Iterator[tuple[SessionService, RedisCluster]]:
    """A cluster of its own, for a test that stops one of its nodes for good."""
    nodes = lose_a_node_later()
    yield service_on(settings, nodes), nodes
    nodes.stop()


def written_users(service: SessionService, nodes: RedisCluster) -> dict[int, list[str]]:
    """USERS[:12] stepped to hello->say_hello, by the port of the node holding them."""
    clients = node_clients(nodes)
    by_node: dict[int, list[str]] = {}
    try:
        for user in USERS[:12]:
            service.step_to(user, slug="hello->say_hello")
            [port] = keys_of(user, clients)
            by_node.setdefault(port, []).append(user)
    finally:
        for client in clients.values():
            client.close()
    return by_node


def assert_unavailable(name: str, call: Callable[[], object], within: float) -> None:
    start = time.monotonic()
    with pytest.raises(SessionStoreUnavailable) as info:
        result = call()
        pytest.fail(f"{name} returned {result!r}")
    took = time.monotonic() - start
    assert took < within, (name, took)
    assert info.value.__cause__ is not None, name  # the redis error, chained


# A try and two retries, each at most one socket timeout, and some room.
BOUND = 3 * TIMEOUT + 1.5


def test_a_frozen_cluster_node_gives_session_store_unavailable_never_a_wrong_answer(freezable):
    service, nodes = freezable
    by_node = written_users(service, nodes)
    assert len(by_node) == 3
    lost_port, alive_port = sorted(by_node)[:2]
    lost, alive = by_node[lost_port][0], by_node[alive_port][0]
    frozen = next(node for node in nodes.nodes if node.port == lost_port)
    os.kill(frozen.process.pid, signal.SIGSTOP)
    try:
        calls = {
            "get": lambda: service.get(lost),
            "step_to": lambda: service.step_to(lost, slug="goodbye->say_bye"),
            "history": lambda: service.history(lost),
            "count_by_state": service.count_by_state,
            "list_sessions": service.list_sessions,
            "list_sessions by prefix": lambda: service.list_sessions(user_id_prefix="u"),
        }
        for name, call in calls.items():
            assert_unavailable(name, call, BOUND)
            # The users of the other nodes are served all along.
            assert service.get(alive).slug == "hello->say_hello", name
    finally:
        os.kill(frozen.process.pid, signal.SIGCONT)
    # A write that timed out may still have been applied when the node woke up: its outcome
    # is unknown, as SessionStoreUnavailable says; it is one of the two, never anything else.
    after = service.get(lost)
    assert after.slug in ("hello->say_hello", "goodbye->say_bye")
    assert sum(service.count_by_state().values()) == 12


def test_a_stopped_cluster_node_gives_session_store_unavailable_then_a_down_cluster_too(
    stoppable,
):
    service, nodes = stoppable
    by_node = written_users(service, nodes)
    lost_port, alive_port = sorted(by_node)[-1], sorted(by_node)[0]
    lost, alive = by_node[lost_port][0], by_node[alive_port][0]
    next(node for node in nodes.nodes if node.port == lost_port).stop()
    calls = {
        "get": lambda: service.get(lost),
        "step_to": lambda: service.step_to(lost, slug="goodbye->say_bye"),
        "history": lambda: service.history(lost),
        "count_by_state": service.count_by_state,
        "list_sessions": service.list_sessions,
    }
    for name, call in calls.items():
        assert_unavailable(name, call, BOUND)
        assert service.get(alive).slug == "hello->say_hello", name

    # Once the other nodes mark it failed (after cluster-node-timeout, shortened here), the
    # cluster, with no replica to promote, refuses every command: every user is unavailable.
    live = [redis.Redis(port=node.port) for node in nodes.nodes if node.port != lost_port]
    try:
        for client in live:
            client.config_set("cluster-node-timeout", 500)
        deadline = time.monotonic() + 10
        while live[0].cluster("info")["cluster_state"] != "fail":
            assert time.monotonic() < deadline, "the cluster never marked the node failed"
            time.sleep(0.05)
    finally:
        for client in live:
            client.close()
    assert_unavailable("get of a user on a live node", lambda: service.get(alive), BOUND)
    assert_unavailable("count_by_state", service.count_by_state, BOUND)
