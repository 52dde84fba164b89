"""The ``STEALTH_SESSIONS_API`` settings dict, read on first access and again after each
``setting_changed`` (so ``override_settings`` works). Class paths are dotted strings, imported
(and cached) on use. Several settings are read on every request: the memo keeps them cheap."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Who the caller is: a bot's DRF token (cached, see authentication.py), or a browser login.
    "AUTHENTICATION_CLASSES": [
        "stealth_sessions.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # What they may do: view_session to read, change_session for every write.
    "PERMISSION_CLASSES": ["stealth_sessions.api.permissions.SessionPermissions"],
    # Throttled by scope; a no-op until REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] sets a rate
    # for "stealth_sessions_read" / "stealth_sessions_write".
    "THROTTLE_CLASSES": ["stealth_sessions.api.throttling.SessionsScopedThrottle"],
    # Seconds a process trusts its cached token -> user (and permissions); 0 disables caching.
    "AUTH_CACHE_TTL": 60,
    # Seconds between two checks of the shared invalidation generation (one cache GET).
    "AUTH_CACHE_CHECK_INTERVAL": 1.0,
    # The Django cache holding the auth generation and the idempotency records.
    "CACHE": "default",
    # Seconds an Idempotency-Key is remembered.
    "IDEMPOTENCY_TTL": 24 * 3600,
    # Seconds a request holding an Idempotency-Key may run before another may take it over.
    "IDEMPOTENCY_LOCK_TTL": 60,
    # Sessions per page of GET sessions/ (the client may ask for up to 1000 with ?limit=).
    "PAGE_SIZE": 50,
}


class APISettings:
    """One typed property per setting, memoized until the settings change."""

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        try:
            return self._memo[name]
        except KeyError:
            pass
        user = getattr(django_settings, "STEALTH_SESSIONS_API", None) or {}
        value = self._memo[name] = user.get(name, DEFAULTS[name])
        return value

    def _classes(self, name: str) -> tuple[type, ...]:
        key = name + ":imported"
        try:
            return self._memo[key]
        except KeyError:
            pass
        classes = self._memo[key] = tuple(_import(path) for path in self._get(name))
        return classes

    def forget(self) -> None:
        self._memo.clear()

    @property
    def AUTHENTICATION_CLASSES(self) -> tuple[type, ...]:
        return self._classes("AUTHENTICATION_CLASSES")

    @property
    def PERMISSION_CLASSES(self) -> tuple[type, ...]:
        return self._classes("PERMISSION_CLASSES")

    @property
    def THROTTLE_CLASSES(self) -> tuple[type, ...]:
        return self._classes("THROTTLE_CLASSES")

    @property
    def AUTH_CACHE_TTL(self) -> float:
        return self._get("AUTH_CACHE_TTL")

    @property
    def AUTH_CACHE_CHECK_INTERVAL(self) -> float:
        return self._get("AUTH_CACHE_CHECK_INTERVAL")

    @property
    def CACHE(self) -> str:
        return self._get("CACHE")

    @property
    def IDEMPOTENCY_TTL(self) -> int:
        return self._get("IDEMPOTENCY_TTL")

    @property
    def IDEMPOTENCY_LOCK_TTL(self) -> int:
        return self._get("IDEMPOTENCY_LOCK_TTL")

    @property
    def PAGE_SIZE(self) -> int:
        return self._get("PAGE_SIZE")


@cache
def _import(path: str | type) -> type:
    return path if isinstance(path, type) else import_string(path)


api_settings = APISettings()


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "STEALTH_SESSIONS_API":
        api_settings.forget()


setting_changed.connect(_forget)
