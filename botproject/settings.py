"""Settings of the demo bot project. Redis comes from $REDIS_URL (``python -m botproject`` starts
a private one and sets it, and prints it for other ``manage.py`` commands): never a Redis that
merely happens to be running."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
try:
    REDIS_URL = os.environ["REDIS_URL"]
except KeyError:
    raise ImproperlyConfigured(
        "The demo's settings need REDIS_URL: run `make demo` (it prints the URL of its Redis), "
        "then e.g. REDIS_URL=redis://127.0.0.1:<port>/0 .venv/bin/python manage.py shell"
    ) from None

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "botproject.urls"
WSGI_APPLICATION = "botproject.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", BASE_DIR / "var" / "demo.sqlite3"),
        # The web server and the RQ worker both write the outbox (botproject/models.py).
        "OPTIONS": {"timeout": 20},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "demo",
        # Bounded waits: a stopped Redis raises SessionStoreUnavailable instead of hanging.
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
}
STEALTH_SESSIONS = {
    "FLOW_MAP": "botproject.flows.flow_map",
    "SESSION_TTL": 7 * 24 * 3600,
    # The demo nudges users with scheduled steps, run by RQ (the default is no engine).
    "SCHEDULER": "stealth_sessions.scheduling.rq_engine.RQStepScheduler",
}
RQ_QUEUES = {"default": {"URL": REDIS_URL}}
# Scheduled steps run in `python manage.py rqworker default --with-scheduler`; a user left at
# hello->ask_name is nudged after this many seconds (botproject/bot.py; `make demo`: 60).
DEMO_NUDGE_AFTER = int(os.environ.get("DEMO_NUDGE_AFTER", 24 * 3600))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "stealth_sessions",
    "botproject",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
# The chat page's script and styles (top-level static/, served by runserver: no CDN).
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

# -- the HTTP API (stealth_sessions.api, mounted at /api/ in urls.py) -------------------------
# No REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]: the API's views carry their own schema class.
SPECTACULAR_SETTINGS = {
    "TITLE": "stealth_sessions API",
    "DESCRIPTION": "Chatbot sessions (flow->state) for bots over HTTP. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
