"""System checks: configuration mistakes reported by ``manage.py check`` with stable ids.
None of them talks to Redis."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import DEFAULTS, conf, engines_hint


def _setting(name: str) -> str:
    return f"STEALTH_SESSIONS[{name!r}]"


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    user = getattr(settings, "STEALTH_SESSIONS", None)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return [
            Error(
                "STEALTH_SESSIONS must be a dict.",
                hint="For example STEALTH_SESSIONS = {'SESSION_TTL': 86400}.",
                id="stealth_sessions.E005",
            )
        ]
    for name in sorted(set(user) - set(DEFAULTS)):
        errors.append(
            Error(
                f"Unknown setting {_setting(name)}.",
                hint=f"Known settings: {', '.join(DEFAULTS)}.",
                id="stealth_sessions.E005",
            )
        )
    rules = {
        "CACHE": (lambda v: isinstance(v, str) and v != "", "a cache alias"),
        # 0: never expire, as in Stealth (the same as None).
        "SESSION_TTL": (
            lambda v: v is None or v == 0 and type(v) is int or _positive_int(v),
            "None or 0 (never expire) or a positive int (s)",
        ),
        "FLOW_MAP": (lambda v: v is None or isinstance(v, str), "None or a dotted path"),
        "KEY_NAMESPACE": (
            lambda v: isinstance(v, str) and v != "" and not set(v) & set("{}* ?[]\t\n"),
            "a non-empty string without braces, wildcards or spaces",
        ),
        # Bounded: a transition rewrites the user's history in its script.
        "HISTORY_LENGTH": (lambda v: _positive_int(v) and v <= 1000, "an int from 1 to 1000"),
        "LOCK_TIMEOUT": (_positive_number, "a positive number of seconds"),
        "CONFLICT_RETRIES": (_positive_int, "a positive int"),
        "CATCH_ALL_TTL": (_positive_int, "a positive int (s)"),
        "SCHEDULER": (lambda v: v is None or isinstance(v, str), "None or a dotted path"),
        "SCHEDULER_QUEUE": (lambda v: isinstance(v, str) and v != "", "a queue name"),
        "TASKS_BACKEND": (lambda v: isinstance(v, str) and v != "", "an alias of TASKS"),
        "STEP_SWEEP_GRACE": (_positive_number, "a positive number of seconds"),
        "STEP_OUTCOMES_LENGTH": (_positive_int, "a positive int"),
        "STEP_OUTCOMES_TTL": (_positive_int, "a positive int (s)"),
        "STEP_LOCKED_RETRY_DELAY": (_positive_number, "a positive number of seconds"),
        "STEP_LOCKED_RETRIES": (_positive_int, "a positive int"),
        "BULK_JOB_LEASE": (_positive_number, "a positive number of seconds"),
        "METRICS": (lambda v: isinstance(v, bool), "True or False"),
    }
    for name, (valid, expected) in rules.items():
        if name in user and not valid(user[name]):
            errors.append(
                Error(
                    f"{_setting(name)} = {user[name]!r} is not valid.",
                    hint=f"Use {expected}; default: {DEFAULTS[name]!r}.",
                    id="stealth_sessions.E005",
                )
            )
    if errors:
        return errors
    errors += _check_cache()
    errors += _check_flow_map()
    errors += _check_scheduler()
    errors += _check_metrics()
    return errors


def _check_metrics() -> list[CheckMessage]:
    """E012: METRICS is on, but prometheus_client is not installed."""
    if not conf.METRICS:
        return []
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return [
            Error(
                f"{_setting('METRICS')} is True, but prometheus_client is not installed.",
                hint="pip install 'stealth-sessions[metrics]', or set METRICS to False.",
                id="stealth_sessions.E012",
            )
        ]
    return []


DJANGO_REDIS = "django_redis.cache.RedisCache"
DJANGOS_REDIS = "django.core.cache.backends.redis.RedisCache"


def _check_cache() -> list[CheckMessage]:
    """The cache's checks: E001 the alias is not in CACHES; E002 it is not a Redis cache
    (django-redis, with any CLIENT_CLASS such as stealth_sessions.cluster.ClusterClient, or
    Django's own RedisCache); E004 it cannot be set up, or its KEY_FUNCTION does not only
    prepend; E007 its keys would carry a brace before the app's hash tag; W001
    IGNORE_EXCEPTIONS; W002 no socket timeouts."""
    alias = conf.CACHE
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            Error(
                f"{_setting('CACHE')} names the cache {alias!r}, which is not in CACHES.",
                hint=f"Add a django-redis cache named {alias!r} to CACHES, or point "
                f"{_setting('CACHE')} at one.",
                id="stealth_sessions.E001",
            )
        ]
    config = caches[alias]
    from django.core.cache.backends.redis import RedisCache as DjangosRedisCache
    from django_redis.cache import RedisCache

    try:
        backend = import_string(config.get("BACKEND", ""))
    except ImportError:
        backend = None
    is_django_redis = isinstance(backend, type) and issubclass(backend, RedisCache)
    if not is_django_redis and not (
        isinstance(backend, type) and issubclass(backend, DjangosRedisCache)
    ):
        return [
            Error(
                f"The cache {alias!r} uses {config.get('BACKEND')!r}, not a Redis cache.",
                hint=f"Set its BACKEND to {DJANGO_REDIS!r} (django-redis; for Redis Cluster "
                "add 'CLIENT_CLASS': 'stealth_sessions.cluster.ClusterClient' to its OPTIONS) "
                f"or {DJANGOS_REDIS!r} (Django's own).",
                id="stealth_sessions.E002",
            )
        ]
    found: list[CheckMessage] = []
    options = config.get("OPTIONS", {})
    if is_django_redis and options.get(
        "IGNORE_EXCEPTIONS", getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False)
    ):
        found.append(
            Warning(
                f"The cache {alias!r} has IGNORE_EXCEPTIONS on: for a plain cache an outage "
                "reads as a miss, which for sessions would look like 'no session'.",
                hint="stealth_sessions raises SessionStoreUnavailable either way; use a cache "
                "without IGNORE_EXCEPTIONS for sessions so the rest of the project agrees.",
                id="stealth_sessions.W001",
            )
        )
    # django-redis's OPTIONS name the timeouts in capitals; Django's passes its OPTIONS to
    # redis-py's connection pool as they are.
    timeouts = ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT")
    if not is_django_redis:
        timeouts = ("socket_connect_timeout", "socket_timeout")
    missing = [o for o in timeouts if o not in options]
    if missing:
        found.append(
            Warning(
                f"The cache {alias!r} sets no {' or '.join(missing)}: when Redis stops "
                "answering, session calls may hang instead of failing.",
                hint=f"Add e.g. '{timeouts[0]}': 2, '{timeouts[1]}': 2 to its OPTIONS.",
                id="stealth_sessions.W002",
            )
        )
    from django.core.cache import caches as cache_handler

    probe = conf.KEY_NAMESPACE
    try:
        cache = cache_handler[alias]
        keeps_suffix = str(cache.make_key(probe + ":{x}")) == str(cache.make_key(probe)) + ":{x}"
        sample = str(cache.make_key("x"))
    except Exception as exc:  # e.g. a KEY_FUNCTION that cannot be imported
        found.append(
            Error(
                f"The cache {alias!r} cannot be set up: {type(exc).__name__}: {exc}",
                hint="Fix the cache's settings (KEY_FUNCTION, OPTIONS) in CACHES.",
                id="stealth_sessions.E004",
            )
        )
        return found
    if not keeps_suffix:
        found.append(
            Error(
                f"The KEY_FUNCTION of cache {alias!r} does not keep make_key(prefix + suffix) "
                "== make_key(prefix) + suffix, which the key layout relies on.",
                hint="Use django-redis's default key function, or one that only prepends.",
                id="stealth_sessions.E004",
            )
        )
    if set(sample) & set("{}"):
        found.append(
            Error(
                f"The keys of cache {alias!r} contain a brace: make_key('x') is "
                f"{sample!r} (KEY_PREFIX {cache.key_prefix!r}). Each session key carries a "
                "hash tag, {NN} (its shard), which must be the first braces in the key for "
                "Redis Cluster to place the key by it.",
                hint="Use a KEY_PREFIX (and KEY_FUNCTION) without '{' or '}'.",
                id="stealth_sessions.E007",
            )
        )
    return found


def _check_flow_map() -> list[CheckMessage]:
    from .service import load_flow_map
    from .signals import registered_actions

    try:
        flow_map = load_flow_map(conf.FLOW_MAP)
    except (ImproperlyConfigured, Exception) as exc:  # a broken module may raise anything
        return [
            Error(
                str(exc),
                hint="Point STEALTH_SESSIONS['FLOW_MAP'] at a module-level FlowMap, "
                "e.g. 'mybot.flows.flow_map'.",
                id="stealth_sessions.E003",
            )
        ]
    if flow_map is None:
        return []
    found: list[CheckMessage] = [
        Error(problem, hint="Declare that state, or fix the reference.", id="stealth_sessions.E006")
        for problem in flow_map.problems()
    ]
    for slug in registered_actions():
        if slug not in flow_map:
            found.append(
                Warning(
                    f"@on_enter({slug!r}) names a state the flow map does not declare: it "
                    "will never run.",
                    hint="Fix the slug or declare the state.",
                    id="stealth_sessions.W003",
                )
            )
    return found


def _check_scheduler() -> list[CheckMessage]:
    """E011: the engine class is unusable; then the engine's own checks (RQ: E010, E011)."""
    from .scheduling.base import StepScheduler

    path = conf.SCHEDULER
    if path is None:
        return []
    try:
        engine = import_string(path)
    except ImportError as exc:
        problem = f"could not be imported: {exc}"
    else:
        if isinstance(engine, type) and issubclass(engine, StepScheduler):
            instance = engine()
            missing = instance.unavailable()
            if missing is None:
                return instance.check()
            return [
                Error(
                    f"{_setting('SCHEDULER')} = {path!r}: {missing}.",
                    hint="Install it, or set SCHEDULER to another engine, or to None (the "
                    "default) to do without scheduled steps.",
                    id="stealth_sessions.E011",
                )
            ]
        problem = "is not a stealth_sessions.scheduling.StepScheduler subclass"
    return [
        Error(
            f"{_setting('SCHEDULER')} = {path!r} {problem}.",
            hint=f"Use {engines_hint()}, your own StepScheduler subclass, or None (the "
            "default) to do without scheduled steps.",
            id="stealth_sessions.E011",
        )
    ]
