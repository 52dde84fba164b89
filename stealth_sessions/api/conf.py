"""The ``STEALTH_SESSIONS_API`` settings dict, read at access time so ``override_settings``
works. Class paths are dotted strings, imported (and cached) on use."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings as django_settings
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
    """One typed property per setting; each reads the user's dict on every access."""

    def _get(self, name: str) -> Any:
        user = getattr(django_settings, "STEALTH_SESSIONS_API", None) or {}
        return user.get(name, DEFAULTS[name])

    @property
    def AUTHENTICATION_CLASSES(self) -> list[type]:
        return [_import(path) for path in self._get("AUTHENTICATION_CLASSES")]

    @property
    def PERMISSION_CLASSES(self) -> list[type]:
        return [_import(path) for path in self._get("PERMISSION_CLASSES")]

    @property
    def THROTTLE_CLASSES(self) -> list[type]:
        return [_import(path) for path in self._get("THROTTLE_CLASSES")]

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
