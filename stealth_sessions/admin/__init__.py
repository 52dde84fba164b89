"""The Django admin for sessions: browse, search, fix and reset users (see options.py).
Registered on the default admin site; another AdminSite can ``register(Session,
SessionAdmin)`` too, since every URL comes from SessionAdmin.get_urls()."""

from django.contrib import admin

from ..models import Session
from .options import SessionAdmin

__all__ = ["SessionAdmin"]

admin.site.register(Session, SessionAdmin)
