import os
import uuid

from botproject.redis_server import RedisServer

# A private, throw-away redis-server for this run (flushed between tests), unless
# STEALTH_TEST_REDIS_URL names a dedicated database: then only this run's keys are deleted,
# so the suite never flushes a Redis it did not start. Started here, at settings import,
# because pytest-django reads the settings before any fixture runs; subprocesses of the
# tests inherit the URL and share the server.
if not os.environ.get("STEALTH_TEST_REDIS_URL"):
    os.environ["STEALTH_TEST_REDIS_URL"] = RedisServer().start().url
    os.environ["STEALTH_TEST_REDIS_PRIVATE"] = "1"
REDIS_URL = os.environ["STEALTH_TEST_REDIS_URL"]
KEY_PREFIX = os.environ.setdefault("STEALTH_TEST_KEY_PREFIX", f"t{uuid.uuid4().hex[:8]}")

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
    }
}
STEALTH_SESSIONS = {"FLOW_MAP": "tests.flows.flow_map"}

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
    "django_rq",
    "stealth_sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
RQ_QUEUES = {"default": {"URL": REDIS_URL}}

# -- the HTTP API (stealth_sessions.api) ------------------------------------------------------
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # the API's offline Swagger UI / Redoc
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "stealth_sessions API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
