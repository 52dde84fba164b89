"""Token authentication without a database query per request.

DRF's TokenAuthentication looks the token up in the database on every request, and the
permission check then loads the user's permissions: two or three queries that cost more than the
Redis operation the request is about. :class:`CachedTokenAuthentication` keeps, per process,
``token key -> (user, token)`` for ``AUTH_CACHE_TTL`` seconds, with the user's permissions loaded
(ModelBackend caches them on the user object), so a warm request touches neither the database
nor Redis for authentication.

Staleness is bounded twice:

* Any change that could alter an answer (a token saved or deleted, a user saved or deleted, a
  user's groups or permissions, a group's permissions, a group or permission deleted) clears
  this process's cache at once and bumps a *generation* stored in the Django cache
  (``STEALTH_SESSIONS_API["CACHE"]``). Every process re-reads the generation at most once per
  ``AUTH_CACHE_CHECK_INTERVAL`` second and drops its entries when it changed: a revoked token
  or permission stops working everywhere within about a second.
* Changes that send no signal (``QuerySet.update()``, raw SQL, another project sharing the
  database) are picked up when entries expire, after ``AUTH_CACHE_TTL`` seconds.

The receivers are connected when this module is imported, which the API's URLconf does; a
process that changes permissions without ever loading the URLconf (a management command)
does not bump the generation, and the TTL is the bound there.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import caches
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from .conf import api_settings

logger = logging.getLogger(__name__)

GENERATION_KEY = "stealth_sessions:api:auth_generation"
MAX_ENTRIES = 10_000


class _AuthCache:
    """Process-local ``key -> (expires, user, token)``, dropped when the generation changes."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, Any, Token]] = {}
        self.generation: object = None
        self.checked = float("-inf")
        self.lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[Any, Token] | None:
        self._sync(now)
        hit = self.entries.get(key)
        if hit is None or hit[0] <= now:
            return None
        return hit[1], hit[2]

    def put(self, key: str, user: Any, token: Token, expires: float) -> None:
        with self.lock:
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[key] = (expires, user, token)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def _sync(self, now: float) -> None:
        if now - self.checked < api_settings.AUTH_CACHE_CHECK_INTERVAL:
            return
        try:
            generation = caches[api_settings.CACHE].get(GENERATION_KEY)
        except Exception:
            # The cache is down: trust nothing cached; the database still answers.
            logger.warning("stealth_sessions.api: cannot read the auth generation", exc_info=True)
            self.clear()
            self.generation = object()
            return
        if generation != self.generation:
            self.clear()
            self.generation = generation
        self.checked = now


_cache = _AuthCache()


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (``Authorization: Token <key>``), cached per process."""

    def authenticate(self, request: Any) -> tuple[Any, Token] | None:
        # DRF reads the header through request.headers, which copies every header of the
        # request into a new mapping (a tenth of a warm request's Python time): a well-formed
        # header is read from META instead. Anything else goes DRF's way, errors included.
        header = request.META.get("HTTP_AUTHORIZATION")
        if type(header) is str and header.isascii() and header.isprintable():
            keyword, _, key = header.partition(" ")
            if key and " " not in key and keyword.lower() == self.keyword.lower():
                return self.authenticate_credentials(key)
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        ttl = api_settings.AUTH_CACHE_TTL
        if not ttl:
            return super().authenticate_credentials(key)
        now = time.monotonic()
        hit = _cache.get(key, now)
        if hit is not None:
            return hit
        # Raises AuthenticationFailed for an unknown key or an inactive user: never cached.
        user, token = super().authenticate_credentials(key)
        user.get_all_permissions()  # fills the backend's per-object cache before sharing it
        # SessionPermissions keeps its has_perm() answers here, for as long as the user is
        # cached: Django's has_perm() loads and instantiates every backend on each call.
        user.stealth_sessions_perms = {}
        _cache.put(key, user, token, now + ttl)
        return user, token


def invalidate(**kwargs: Any) -> None:
    """Drop cached credentials here, and everywhere within AUTH_CACHE_CHECK_INTERVAL."""
    _cache.clear()
    try:
        caches[api_settings.CACHE].set(GENERATION_KEY, uuid.uuid4().hex, None)
    except Exception:
        logger.warning(
            "stealth_sessions.api: cannot bump the auth generation; other processes keep "
            "cached credentials until AUTH_CACHE_TTL",
            exc_info=True,
        )


def _connect() -> None:
    user_model = get_user_model()
    for model in (Token, user_model, Group, Permission):
        post_save.connect(invalidate, sender=model, dispatch_uid=f"ss_api_save_{model._meta}")
        post_delete.connect(invalidate, sender=model, dispatch_uid=f"ss_api_del_{model._meta}")
    through: list[type[Model]] = [Group.permissions.through]
    for name in ("groups", "user_permissions"):
        field = getattr(user_model, name, None)
        if field is not None:  # custom user models may lack PermissionsMixin
            through.append(field.through)
    for through_model in through:
        m2m_changed.connect(
            invalidate, sender=through_model, dispatch_uid=f"ss_api_m2m_{through_model._meta}"
        )


_connect()
