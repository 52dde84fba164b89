"""Template filters of the session admin."""

from __future__ import annotations

from datetime import timedelta

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
