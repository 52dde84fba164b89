"""Settings of the scheduling benchmark's Django Tasks part (benchmarks/_scheduling_tasks.py)
and of its db_worker processes: a private Redis ($REDIS_URL) and django-tasks-db's
DatabaseBackend on a SQLite file ($BENCH_TASKS_DB)."""

import importlib.util
import os

USE_TZ = True
SECRET_KEY = "benchmarks-only"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "stealth_sessions"]
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS.append("django_tasks")  # the backport, on Django 5.2
INSTALLED_APPS.append("django_tasks_db")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_TASKS_DB", ":memory:"),
        "OPTIONS": {"timeout": 30},  # the worker and the scheduler share the file
    }
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"),
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 5},
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
STEALTH_SESSIONS = {
    "FLOW_MAP": "botproject.flows.flow_map",
    "SCHEDULER": "stealth_sessions.scheduling.tasks.DjangoTasksScheduler",
}
