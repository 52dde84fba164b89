"""System checks: each configuration mistake has a stable id and a hint."""

import pytest
from django.core.checks import run_checks

from stealth_sessions.checks import check_settings

REDIS = "django_redis.cache.RedisCache"
DJANGOS_REDIS = "django.core.cache.backends.redis.RedisCache"


def ids(messages=None):
    return sorted(m.id for m in (check_settings() if messages is None else messages))


def cache(location, **options):
    return {"BACKEND": REDIS, "LOCATION": location, "OPTIONS": options}


@pytest.fixture
def good_cache(settings):
    location = settings.CACHES["default"]["LOCATION"]
    return lambda **options: cache(location, SOCKET_TIMEOUT=1, SOCKET_CONNECT_TIMEOUT=1, **options)


def test_the_test_settings_pass(settings):
    assert ids() == []
    assert [m for m in run_checks() if m.id.startswith("stealth_sessions")] == []


def test_e001_missing_cache_alias(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "CACHE": "sessions"}
    [message] = check_settings()
    assert message.id == "stealth_sessions.E001"
    assert "'sessions'" in message.msg and message.hint


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.memcached.PyMemcacheCache",
        "no.such.Backend",
    ],
)
def test_e002_cache_not_redis(settings, backend):
    settings.CACHES = {**settings.CACHES, "other": {"BACKEND": backend, "LOCATION": "x"}}
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "CACHE": "other"}
    [message] = check_settings()
    assert message.id == "stealth_sessions.E002"
    assert "django_redis.cache.RedisCache" in message.hint
    assert "django.core.cache.backends.redis.RedisCache" in message.hint


def test_e002_accepts_djangos_own_redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": DJANGOS_REDIS,
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    assert ids() == []


def test_e002_accepts_the_cluster_client(settings, good_cache):
    settings.CACHES = {"default": good_cache(CLIENT_CLASS="stealth_sessions.cluster.ClusterClient")}
    assert ids() == []


def test_w001_ignore_exceptions(settings, good_cache):
    settings.CACHES = {"default": good_cache(IGNORE_EXCEPTIONS=True)}
    assert ids() == ["stealth_sessions.W001"]


def test_w002_no_socket_timeouts(settings):
    settings.CACHES = {"default": cache(settings.CACHES["default"]["LOCATION"])}
    [message] = check_settings()
    assert message.id == "stealth_sessions.W002"
    assert "SOCKET_CONNECT_TIMEOUT or SOCKET_TIMEOUT" in message.msg


def test_w002_names_djangos_own_options_for_its_redis_cache(settings):
    settings.CACHES = {"default": {"BACKEND": DJANGOS_REDIS, "LOCATION": "redis://127.0.0.1:1/0"}}
    [message] = check_settings()
    assert message.id == "stealth_sessions.W002"
    assert "socket_connect_timeout or socket_timeout" in message.msg


def test_e003_flow_map_cannot_be_imported(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "FLOW_MAP": "tests.nope.flow_map"}
    [message] = check_settings()
    assert message.id == "stealth_sessions.E003"
    assert "STEALTH_SESSIONS['FLOW_MAP'] = 'tests.nope.flow_map' could not be imported" in (
        message.msg
    )


def test_e003_flow_map_is_not_a_flow_map(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "FLOW_MAP": "tests.settings.DEBUG"}
    assert ids() == ["stealth_sessions.E003"]


def test_e004_key_function_that_does_not_prepend(settings, good_cache):
    settings.CACHES = {"default": {**good_cache(), "KEY_FUNCTION": "tests.test_checks.reversing"}}
    assert ids() == ["stealth_sessions.E004"]


def test_e004_key_function_that_cannot_be_imported(settings, good_cache):
    settings.CACHES = {"default": {**good_cache(), "KEY_FUNCTION": "tests.nope.key"}}
    [message] = [m for m in check_settings() if m.id == "stealth_sessions.E004"]
    assert "cannot be set up" in message.msg and "tests.nope" in message.msg


def reversing(key, key_prefix, version):
    return f"{key[::-1]}:{version}"


@pytest.mark.parametrize("prefix", ["app{1}", "app{", "app}"])
def test_e007_key_prefix_with_a_brace(settings, good_cache, prefix):
    settings.CACHES = {"default": {**good_cache(), "KEY_PREFIX": prefix}}
    [message] = check_settings()
    assert message.id == "stealth_sessions.E007"
    assert repr(prefix) in message.msg and "KEY_PREFIX" in message.hint


def test_e007_key_function_that_adds_a_brace(settings, good_cache):
    settings.CACHES = {"default": {**good_cache(), "KEY_FUNCTION": "tests.test_checks.tagging"}}
    assert ids() == ["stealth_sessions.E007"]


def tagging(key, key_prefix, version):
    return f"{{{key_prefix}}}:{version}:{key}"


def test_e007_applies_to_djangos_own_redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": DJANGOS_REDIS,
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": "{app}",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    assert ids() == ["stealth_sessions.E007"]


def test_session_ttl_0_means_never_expire_as_in_stealth(settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 0}
    assert check_settings() == []
    from stealth_sessions.service import get_session_service

    session = get_session_service().step_to("u", slug="hello->say_hello")
    assert session.ttl is None and get_session_service().ttl is None


@pytest.mark.parametrize(
    "name,value",
    [
        ("SESSION_TTL", -1),
        ("SESSION_TTL", "1h"),
        ("SESSION_TTL", True),
        ("HISTORY_LENGTH", -1),
        ("HISTORY_LENGTH", 1001),
        ("KEY_NAMESPACE", "a{b}"),
        ("KEY_NAMESPACE", ""),
        ("LOCK_TIMEOUT", 0),
        ("CONFLICT_RETRIES", 0),
        ("BULK_JOB_LEASE", 0),
        ("STEP_LOCKED_RETRIES", 0),
        ("STEP_LOCKED_RETRY_DELAY", "2s"),
        ("CACHE", 3),
        ("FLOW_MAP", 3),
        ("SESION_TTL", 60),
    ],
)
def test_e005_malformed_values_and_unknown_names(settings, name, value):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, name: value}
    [message] = check_settings()
    assert message.id == "stealth_sessions.E005"
    assert name in message.msg


def test_e006_flow_map_references_an_undeclared_state(settings):
    settings.STEALTH_SESSIONS = {
        **settings.STEALTH_SESSIONS,
        "FLOW_MAP": "tests.test_checks.broken",
    }
    [message] = check_settings()
    assert message.id == "stealth_sessions.E006"
    assert "x->a fails_to 'x->nowhere'" in message.msg


def test_w003_on_enter_for_an_undeclared_state(settings, action):
    action("hello->nope", lambda **kw: None)
    assert ids() == ["stealth_sessions.W003"]


from stealth_sessions.flows import FlowMap, State  # noqa: E402

broken = FlowMap()
broken.flow("x", [State("a", fails_to="nowhere")])
