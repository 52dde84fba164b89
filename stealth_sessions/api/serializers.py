"""Request validation and response shapes.

Input serializers reject fields they do not declare (a typo must not be silently ignored).
Output serializers document the responses for the OpenAPI schema; the views build the
response bodies with the plain functions at the end, which give the same shape without a
serializer's per-field overhead on the hot paths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, cast

from django.utils.dateparse import parse_datetime, parse_duration
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..values import Session

# A step scheduled further ahead than this is almost certainly a unit mistake (ms for s).
MAX_DELAY = timedelta(days=3650)

# -- input ----------------------------------------------------------------------------------


class Target(TypedDict, total=False):
    """Where to move, as the service's keyword arguments: ``slug=``, or ``flow=`` and/or
    ``state=`` (see :meth:`TargetSerializer.target`)."""

    slug: str
    flow: str
    state: str


class StrictSerializer(serializers.Serializer):
    """A serializer answering 400 ``unknown_field`` for each field it does not declare."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = [name for name in data if name not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {
                        str(name): [serializers.ErrorDetail("Unknown field.", "unknown_field")]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


def _name_field(help_text: str) -> serializers.CharField:
    # No trimming: " hello" is a malformed name, and the service says so.
    return serializers.CharField(
        required=False, max_length=200, trim_whitespace=False, help_text=help_text
    )


class TargetSerializer(StrictSerializer):
    """Where to move: ``slug``, or ``flow`` (its first state unless ``state`` is given), or
    ``state`` alone (a state of the user's current flow)."""

    slug = _name_field("Full target slug, e.g. 'hello->ask_name'.")
    flow = _name_field("Target flow; its initial state unless 'state' is given.")
    state = _name_field("Target state; alone, a state of the user's current flow.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "slug" in attrs and ("flow" in attrs or "state" in attrs):
            raise serializers.ValidationError(
                "Give either 'slug', or 'flow' and/or 'state', not both", "invalid_target"
            )
        if not attrs.keys() & {"slug", "flow", "state"}:
            raise serializers.ValidationError(
                "Give a target: 'slug', or 'flow' and/or 'state'", "invalid_target"
            )
        return attrs

    def target(self) -> Target:
        """The service's keyword arguments: ``slug=`` or ``flow=``/``state=``."""
        data = self.validated_data
        target: Target = {}
        if "slug" in data:
            target["slug"] = data["slug"]
        if "flow" in data:
            target["flow"] = data["flow"]
        if "state" in data:
            target["state"] = data["state"]
        return target


class EmptySerializer(StrictSerializer):
    """No fields: the body may be absent or ``{}``."""


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "number",
                "minimum": 0,
                "exclusiveMinimum": True,
                "maximum": MAX_DELAY.total_seconds(),
            },
            {"type": "string", "example": "PT5M"},
        ],
        "description": "Seconds (> 0), or an ISO 8601 duration such as 'PT5M'.",
    }
)
class DelayField(serializers.Field):
    """Seconds as a number, or an ISO 8601 duration string; a timedelta in (0, MAX_DELAY]."""

    default_error_messages = {
        "invalid_delay": "Give a number of seconds > 0 or an ISO 8601 duration like 'PT5M', "
        "up to {max} days.",
    }

    def to_internal_value(self, data: Any) -> timedelta:
        delay: timedelta | None = None
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            if math.isfinite(data) and 0 < data <= MAX_DELAY.total_seconds():
                delay = timedelta(seconds=data)
        elif isinstance(data, str) and len(data) <= 100:
            try:
                delay = parse_duration(data)
            except (ValueError, OverflowError):
                delay = None
        if delay is None or not timedelta(0) < delay <= MAX_DELAY:
            self.fail("invalid_delay", max=MAX_DELAY.days)
        return delay

    def to_representation(self, value: timedelta) -> float:
        return value.total_seconds()


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An ISO 8601 date and time *with* a UTC offset; naive times are refused (whose zone?)."""

    default_error_messages = {
        "invalid_datetime": "Give an ISO 8601 date and time, e.g. '2030-01-01T09:00:00+01:00'.",
        "naive_datetime": "Give a UTC offset ('Z' or '+01:00'): a naive time is ambiguous.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        when = None
        if isinstance(data, str) and len(data) <= 100:
            try:
                when = parse_datetime(data)
                if when is not None and when.tzinfo is not None:
                    when = when.astimezone(UTC)  # OverflowError near year 1 or 9999
            except (ValueError, OverflowError):
                when = None
        if when is None:
            self.fail("invalid_datetime")
        if when.tzinfo is None:
            self.fail("naive_datetime")
        return when

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class StepToInSerializer(TargetSerializer):
    delay = DelayField()
    if_unchanged = serializers.BooleanField(
        default=False, help_text="Only step if the session has not moved since scheduling."
    )
    # A declared field, not an override of .data: SerializerMetaclass moves it away.
    data = serializers.JSONField(  # type: ignore[assignment]
        required=False,
        allow_null=True,
        default=None,
        help_text="A JSON object (at most 4 kB encoded) kept with the step and passed to the "
        "receivers as `data` when it fires (e.g. the page id the bot answers from).",
    )


class StepToAtSerializer(TargetSerializer):
    at = AwareDateTimeField()
    if_unchanged = serializers.BooleanField(
        default=False, help_text="Only step if the session has not moved since scheduling."
    )
    # A declared field, not an override of .data: SerializerMetaclass moves it away.
    data = serializers.JSONField(  # type: ignore[assignment]
        required=False,
        allow_null=True,
        default=None,
        help_text="A JSON object (at most 4 kB encoded) kept with the step and passed to the "
        "receivers as `data` when it fires (e.g. the page id the bot answers from).",
    )


class ListQuerySerializer(StrictSerializer):
    """Query parameters of ``GET sessions/``."""

    flow = serializers.CharField(required=False, max_length=200, trim_whitespace=False)
    state = serializers.CharField(
        required=False, max_length=200, trim_whitespace=False, help_text="Needs 'flow'."
    )
    user_id = serializers.CharField(
        required=False, max_length=256, trim_whitespace=False, help_text="User id prefix."
    )
    cursor = serializers.CharField(required=False, max_length=2048, trim_whitespace=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000)

    def to_internal_value(self, data: Any) -> Any:
        # Only our parameters: others (cache busters, "format") are none of our business.
        return super().to_internal_value({k: data[k] for k in data if k in self.fields})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "state" in attrs and "flow" not in attrs:
            raise serializers.ValidationError({"state": ["Give 'flow' too."]}, "state_needs_flow")
        return attrs


# -- output (for the schema) ----------------------------------------------------------------


class ScheduledStepSerializer(serializers.Serializer):
    id = serializers.CharField()
    user_id = serializers.CharField()
    target = serializers.CharField(help_text="The slug the user will be stepped to.")
    due = serializers.DateTimeField()
    created = serializers.DateTimeField()
    if_unchanged = serializers.BooleanField()
    # A declared field, not an override of .data: SerializerMetaclass moves it away.
    data = serializers.JSONField(  # type: ignore[assignment]
        allow_null=True, help_text="The step's data, or null."
    )
    retries = serializers.IntegerField(
        help_text="How often it fired while the user was locked and was put off."
    )


class SessionSummarySerializer(serializers.Serializer):
    user_id = serializers.CharField()
    slug = serializers.CharField(help_text="As stored, even if malformed or unknown.")
    flow = serializers.CharField(allow_null=True, help_text="Null if the slug is unusable.")
    state = serializers.CharField(allow_null=True, help_text="Null if the slug is unusable.")
    previous = serializers.CharField(allow_null=True)
    back_to = serializers.CharField(allow_null=True)
    version = serializers.IntegerField(help_text="Write counter; the ETag is '\"<version>\"'.")
    ttl = serializers.IntegerField(allow_null=True, help_text="Seconds left; null: no expiry.")


class SessionSerializer(SessionSummarySerializer):
    scheduled = ScheduledStepSerializer(many=True, help_text="Pending scheduled steps.")


class SessionPageSerializer(serializers.Serializer):
    results = SessionSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True, help_text="URL of the next page.")


class ScheduledResultSerializer(serializers.Serializer):
    step = ScheduledStepSerializer()
    session = SessionSerializer(allow_null=True, help_text="Null if the user has no session.")


class CancelledSerializer(serializers.Serializer):
    cancelled = serializers.IntegerField()


class FlowStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    states = serializers.DictField(child=serializers.IntegerField())


class StatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    flows = serializers.DictField(child=FlowStatsSerializer())
    slugs = serializers.DictField(
        child=serializers.IntegerField(), help_text="Users per slug as stored, malformed included."
    )


class StateSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()
    fails_to = serializers.CharField(allow_null=True)
    redirects_to = serializers.CharField(allow_null=True)


class FlowSerializer(serializers.Serializer):
    name = serializers.CharField()
    initial_state = serializers.CharField()
    states = StateSerializer(many=True)


class FlowMapSerializer(serializers.Serializer):
    flows = FlowSerializer(many=True)


class ErrorItemSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, e.g. 'invalid_slug', 'precondition_failed'.")
    detail = serializers.CharField()
    # A declared field, not an override: SerializerMetaclass moves it into _declared_fields,
    # so Serializer.errors (a property) is untouched; the stubs cannot model that.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=ErrorItemSerializer(many=True), required=False, help_text="400: per field."
    )
    current_version = serializers.IntegerField(required=False, help_text="409/412 conflicts.")


# -- fast representations -------------------------------------------------------------------


def plain_target(data: Any) -> Target | None:
    """TargetSerializer's ``target()`` for a body it would plainly accept (``{"slug": ...}``
    or ``{"flow": ..., "state": ...}``, short ASCII strings); None for anything else, which
    the serializer then validates and, if need be, answers with its 400."""
    if type(data) is not dict or not 1 <= len(data) <= 2:
        return None
    if len(data) == 1:
        if not data.keys() <= _TARGET_KEYS:
            return None
    elif data.keys() != _FLOW_STATE:
        return None
    for value in data.values():
        if type(value) is not str or not 0 < len(value) <= 200 or not value.isascii():
            return None
        if "\x00" in value:
            return None
    return cast(Target, data)  # checked above: only Target's keys, each a str


_TARGET_KEYS = frozenset(("slug", "flow", "state"))
_FLOW_STATE = frozenset(("flow", "state"))


def session_summary(session: Session) -> dict[str, Any]:
    """SessionSummarySerializer's shape."""
    return {
        "user_id": session.user_id,
        "slug": session.slug,
        "flow": session.flow,
        "state": session.state,
        "previous": session.previous,
        "back_to": session.back_to,
        "version": session.version,
        "ttl": session.ttl,
    }


def scheduled_step(step: Any) -> dict[str, Any]:
    """ScheduledStepSerializer's shape, from the service's ScheduledStep."""
    return {
        "id": str(step.id),
        "user_id": step.user_id,
        "target": str(step.target),
        "due": _iso(step.due),
        "created": _iso(step.created),
        "if_unchanged": bool(step.if_unchanged),
        "data": step.data,
        "retries": step.retries,
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
