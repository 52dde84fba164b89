"""Template filters of the session admin."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.timesince import timeuntil

register = template.Library()


@register.filter
def expires_in(ttl: int | None) -> str:
    """A session's ``ttl`` (whole seconds, None: no expiry) as "6 days, 23 hours"."""
    if ttl is None:
        return "never"
    if ttl < 60:
        return f"{ttl} s"
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=ttl), now)


@register.filter
def as_json(value: Any) -> str:
    """A scheduled step's ``data`` as compact JSON (escaped by the template as any string)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
