"""Django permissions, as admins assign them to users and groups, decide what a caller may do."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class SessionPermissions(BasePermission):
    """``stealth_sessions.view_session`` to read; ``stealth_sessions.change_session`` for every
    write, resets and scheduling included. Anonymous callers are refused (401)."""

    read_permission = "stealth_sessions.view_session"
    write_permission = "stealth_sessions.change_session"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        perm = self.read_permission if request.method in SAFE_METHODS else self.write_permission
        # A user from CachedTokenAuthentication carries a memo of answers, dropped with the
        # cached user itself (AUTH_CACHE_TTL, or at once when permissions change).
        answers = getattr(user, "stealth_sessions_perms", None)
        if answers is None:
            return user.has_perm(perm)
        try:
            return answers[perm]
        except KeyError:
            allowed = answers[perm] = user.has_perm(perm)
            return allowed
