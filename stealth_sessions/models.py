"""No tables: sessions live in Redis. This unmanaged model gives them a place in the admin and
the permissions admins assign to users and groups: ``stealth_sessions.view_session`` to read,
``stealth_sessions.change_session`` for every write."""

from django.db import models


class Session(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view", "change")
        verbose_name = "chatbot session"

    def __str__(self) -> str:
        return "chatbot session"
