"""``Idempotency-Key``: a retried POST returns the first result instead of acting twice.

The first successful (2xx) response to a key is stored in the Django cache
(``STEALTH_SESSIONS_API["CACHE"]``) for ``IDEMPOTENCY_TTL`` seconds, keyed by (caller, method,
path, key), with a fingerprint of the request (body and If-Match). Then:

* the same request again: the stored response, with ``Idempotent-Replayed: true``;
* the same key with another body: 422 ``idempotency_key_reused``;
* the same key while the first request still runs: 409 ``idempotency_in_progress`` with
  Retry-After. ``cache.add`` (Redis ``SET NX``) makes exactly one of two concurrent identical
  requests the owner of the key; the other never reaches the service.

Errors are not stored: after a 4xx or 5xx the key is released, and a retry runs again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.cache import caches
from django.http import HttpResponseBase
from rest_framework.response import Response

from .conf import api_settings
from .errors import APIError, BadRequest, Conflict, ServiceUnavailable, Unprocessable

HEADER = "Idempotency-Key"
META_KEY = "HTTP_IDEMPOTENCY_KEY"  # read from META: request.headers copies every header
MAX_KEY_LENGTH = 255


class InProgress(Conflict):
    wait = 1  # Retry-After


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


class IdempotencyRecord:
    """The cache entry of one (caller, method, path, key)."""

    def __init__(self, request: Any, key: str) -> None:
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
            raise BadRequest(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                "invalid_idempotency_key",
            )
        caller = str(request.user.pk) if request.user.is_authenticated else "anonymous"
        self.cache_key = "stealth_sessions:api:idem:" + _digest(
            caller, request.method, request.path, key
        )
        body = json.dumps(request.data, sort_keys=True, default=str)
        self.fingerprint = _digest(body, request.META.get("HTTP_IF_MATCH", ""))
        self.owner = uuid.uuid4().hex

    def begin(self) -> Response | None:
        """The stored response to replay, or None when this request now owns the key."""
        pending = {"fp": self.fingerprint, "owner": self.owner}
        entry = self._call("add", self.cache_key, pending, api_settings.IDEMPOTENCY_LOCK_TTL)
        if entry is True:
            return None
        entry = self._call("get", self.cache_key)
        if entry is None:  # the other request just failed and released the key
            raise InProgress(f"A request with this {HEADER} is running", "idempotency_in_progress")
        if entry["fp"] != self.fingerprint:
            raise Unprocessable(
                f"This {HEADER} was used for a different request; use a new key",
                "idempotency_key_reused",
            )
        if "status" not in entry:
            raise InProgress(f"A request with this {HEADER} is running", "idempotency_in_progress")
        headers = {"Idempotent-Replayed": "true", **entry["headers"]}
        return Response(entry["data"], status=entry["status"], headers=headers)

    def complete(self, response: Any) -> None:
        # A DRF Response or the views' RenderedResponse: both keep the data as ``.data``.
        entry = {
            "fp": self.fingerprint,
            "status": response.status_code,
            "data": response.data,
            "headers": {k: response[k] for k in ("ETag", "Location") if response.has_header(k)},
        }
        self._call("set", self.cache_key, entry, api_settings.IDEMPOTENCY_TTL)

    def release(self) -> None:
        entry = self._call("get", self.cache_key)
        # Only our own pending entry: after IDEMPOTENCY_LOCK_TTL another request may own it.
        if entry is not None and entry.get("owner") == self.owner:
            self._call("delete", self.cache_key)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(caches[api_settings.CACHE], method)(*args)
        except APIError:
            raise
        except Exception as exc:
            # The cache is Redis: if it fails, so would the session store.
            raise ServiceUnavailable() from exc


def idempotent(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Decorate a POST action so that an ``Idempotency-Key`` header makes it replayable."""

    @wraps(view)
    def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        key = request.META.get(META_KEY)
        if key is None:
            return view(self, request, *args, **kwargs)
        record = IdempotencyRecord(request, key)
        replay = record.begin()
        if replay is not None:
            return replay
        try:
            response = view(self, request, *args, **kwargs)
        except BaseException:
            record.release()
            raise
        if 200 <= response.status_code < 300:
            record.complete(response)
        else:
            record.release()
        return response

    return wrapper
