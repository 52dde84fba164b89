from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StealthSessionsConfig(AppConfig):
    name = "stealth_sessions"
    verbose_name = _("Chatbot sessions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            metrics,
        )

        metrics.install_if_enabled()
