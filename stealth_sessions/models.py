"""No tables: sessions live in Redis. This unmanaged model gives them a place in the admin and
the permissions admins assign to users and groups: ``stealth_sessions.view_session`` to read,
``stealth_sessions.change_session`` for every write, and ``bulk_change_session`` in addition
for the admin's bulk actions. An instance stands for one user's session (its admin log entries
are keyed by user id); nothing is ever saved."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Session(models.Model):
    user_id = models.CharField(primary_key=True, max_length=256)

    class Meta:
        managed = False
        default_permissions = ("view", "change")
        permissions = [("bulk_change_session", _("Can reset and move many sessions at once"))]
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    def __str__(self) -> str:
        return self.user_id
