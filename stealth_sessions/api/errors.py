"""Every error the API answers, mapped in this one place.

Domain exceptions from the service become :class:`APIError` subclasses with a stable ``code``;
DRF's own errors keep theirs. Every error body has the same shape::

    {"code": "invalid_slug", "detail": "Malformed slug ...", "errors": {...}}   # errors: 400 only

``errors`` maps each invalid field to ``[{"message": ..., "code": ...}]``; the top-level ``code``
of a validation error is that of its first field error.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import metrics
from ..exceptions import (
    InvalidCursor,
    InvalidSchedule,
    InvalidSlug,
    InvalidStateTransition,
    InvalidUserId,
    NoBackToSession,
    SessionConflict,
    SessionLocked,
    SessionStoreUnavailable,
    StealthSessionsError,
)

# Seconds a client should wait before retrying when Redis is unavailable.
RETRY_AFTER_SECONDS = 1

logger = logging.getLogger("stealth_sessions.api")


class APIError(exceptions.APIException):
    """An API error with a stable ``code``; ``extra`` goes into the body as is."""

    def __init__(self, detail: str | None = None, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code or self.default_code)
        self.code = code or self.default_code
        self.extra = extra


class BadRequest(APIError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("Invalid request.")
    default_code = "invalid"


class NotFound(APIError):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = _("Not found.")
    default_code = "not_found"


class Conflict(APIError):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the session's current state.")
    default_code = "conflict"
    wait: int | None = None  # Retry-After, for a locked session


class PreconditionFailed(APIError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _("The session is not at the version given by If-Match.")
    default_code = "precondition_failed"


class Unprocessable(APIError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("The request cannot be processed.")
    default_code = "unprocessable"


class ServiceUnavailable(APIError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The session store is unavailable; retry later.")
    default_code = "store_unavailable"
    # DRF's handler turns ``wait`` into a Retry-After header.
    wait = RETRY_AFTER_SECONDS


class SchedulingDisabled(APIError):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_detail = _("Scheduled steps are disabled in this installation.")
    default_code = "scheduling_disabled"


def to_api_error(exc: Exception, request: Any) -> Exception:
    """The APIException answering ``exc``; ``exc`` itself if it is not a domain error."""
    if isinstance(exc, SessionConflict):
        # Stale If-Match is the client's precondition failing; otherwise the service gave up
        # after its retries, or a conditional write raced: a plain conflict.
        cls = PreconditionFailed if request.META.get("HTTP_IF_MATCH") else Conflict
        return cls(str(exc), current_version=exc.actual)
    if isinstance(exc, SessionStoreUnavailable):
        # The message may name hosts and ports: log it, do not tell the client.
        logger.error(
            "Answered %s %s with a 503: %s", request.method, request.path, exc, exc_info=exc
        )
        metrics.store_unavailable("api")
        return ServiceUnavailable()
    if isinstance(exc, InvalidUserId):
        return BadRequest(str(exc), "invalid_user_id")
    if isinstance(exc, InvalidSlug):
        return BadRequest(str(exc), "invalid_slug")
    if isinstance(exc, InvalidSchedule):
        return BadRequest(str(exc), "invalid_schedule")
    if isinstance(exc, InvalidCursor):
        return BadRequest(str(exc), "invalid_cursor")
    if isinstance(exc, NoBackToSession):
        return Conflict(str(exc), "no_back_to")
    if isinstance(exc, InvalidStateTransition):
        return BadRequest(str(exc), "invalid_transition")
    if isinstance(exc, SessionLocked):
        return locked(exc)
    if isinstance(exc, Http404):
        return NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, StealthSessionsError):
        # A domain error this module does not know yet (added by a later version of the
        # service): still the caller's input, never a 500.
        return BadRequest(str(exc), "invalid")
    return exc


def locked(exc: SessionLocked) -> Conflict:
    """409 ``session_locked``: another owner holds the user's lock (a worker handling their
    message). Retry-After: the seconds until its auto-release, at most; ``locked_until``."""
    lock = exc.lock
    if lock is None:
        error = Conflict(str(exc), "session_locked")
        error.wait = RETRY_AFTER_SECONDS
        return error
    until = lock.until.isoformat().replace("+00:00", "Z")
    error = Conflict(str(exc), "session_locked", locked_until=until)
    left = (lock.until - timezone.now()).total_seconds()
    error.wait = max(RETRY_AFTER_SECONDS, math.ceil(left))
    return error


def _field_errors(detail: Any) -> dict[str, list[dict[str, str]]]:
    if isinstance(detail, list):
        detail = {"non_field_errors": detail}
    out: dict[str, list[dict[str, str]]] = {}
    for field, errors in detail.items():
        items = errors if isinstance(errors, list) else [errors]
        out[str(field)] = [
            {"message": str(e), "code": getattr(e, "code", None) or "invalid"} for e in items
        ]
    return out


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    """The JSON body of ``exc``: ``{"code", "detail"}``, plus ``errors`` for a 400."""
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        first = next(iter(errors.values()))[0]
        return {"code": first["code"], "detail": "Invalid input.", "errors": errors}
    code = getattr(exc, "code", None) or exc.default_code
    body = {"code": code, "detail": str(exc.detail)}
    body.update(getattr(exc, "extra", {}))
    return body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler of the API views (set per view, not project-wide)."""
    exc = to_api_error(exc, context["request"])
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = error_body(exc)
    return response
