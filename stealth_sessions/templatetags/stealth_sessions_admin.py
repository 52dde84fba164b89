"""Template filters of the session admin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def expires_in(ttl: int | None) -> str:
    """A session's ``ttl`` (whole seconds, None: no expiry) as "6 days, 23 hours"."""
    if ttl is None:
        return _("never")
    if ttl < 60:
        return _("%(seconds)d s") % {"seconds": ttl}
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=ttl), now)


@register.filter
def as_json(value: Any) -> str:
    """A scheduled step's ``data`` as compact JSON (escaped by the template as any string)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@register.filter
def ago(when: datetime | None) -> str:
    """ "just now" under a minute (not "0 minutes ago"), else "3 minutes ago"."""
    if when is None:
        return "–"
    if timezone.now() - when < timedelta(minutes=1):
        return _("just now")
    return _("%(delta)s ago") % {"delta": timesince(when, depth=1)}


@register.filter
def slug_breaks(slug: str | None) -> SafeString | str:
    """A slug that may wrap after its "->", never inside a flow or state name."""
    if not slug:
        return "–"
    flow, arrow, state = slug.partition("->")
    if not arrow:
        return format_html('<span class="ss-nw">{}</span>', slug)
    return format_html(
        '<span class="ss-nw">{}-&gt;</span><wbr><span class="ss-nw">{}</span>', flow, state
    )
