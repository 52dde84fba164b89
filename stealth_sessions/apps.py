from django.apps import AppConfig


class StealthSessionsConfig(AppConfig):
    name = "stealth_sessions"
    verbose_name = "Chatbot sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            metrics,
        )

        metrics.install_if_enabled()
