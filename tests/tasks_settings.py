"""tests/settings.py with scheduled steps on Django's Tasks framework: django-tasks-db's
DatabaseBackend on a SQLite file (``STEALTH_TEST_TASKS_DB``) that the test and its
``db_worker`` subprocess share. Django 5.2 uses the django-tasks backport."""

import importlib.util
import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("STEALTH_TEST_TASKS_DB", ":memory:"),
    }
}
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
STEALTH_SESSIONS = {
    **STEALTH_SESSIONS,  # noqa: F405
    "SCHEDULER": "stealth_sessions.scheduling.tasks.DjangoTasksScheduler",
}
