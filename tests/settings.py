import os

# The Redis servers come from the environment, set by the pytest plugin tests/redis_plugin.py
# (it starts private ones, or keeps those a developer named) and inherited by the tests'
# subprocesses. Importing these settings starts nothing (mypy imports them too): without the
# plugin, the URLs point at port 1, where nothing listens, so a misconfigured run fails at its
# first Redis call instead of touching somebody's Redis.
NOWHERE = "redis://127.0.0.1:1/0"
CLUSTER = os.environ.get("STEALTH_TEST_CLUSTER") == "1"
KEY_PREFIX = os.environ.get("STEALTH_TEST_KEY_PREFIX", "stealth-tests")
CACHE_OPTIONS: dict[str, object] = {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}
if CLUSTER:
    CLUSTER_URLS = os.environ.get("STEALTH_TEST_REDIS_CLUSTER_URLS", NOWHERE)
    LOCATION: str | list[str] = CLUSTER_URLS.split(",")
    CACHE_OPTIONS["CLIENT_CLASS"] = "stealth_sessions.cluster.ClusterClient"
    RQ_URL = os.environ.get("STEALTH_TEST_RQ_URL", NOWHERE)  # RQ needs a single Redis
else:
    LOCATION = RQ_URL = os.environ.get("STEALTH_TEST_REDIS_URL", NOWHERE)

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
        "LOCATION": LOCATION,
        "KEY_PREFIX": KEY_PREFIX,
        "OPTIONS": CACHE_OPTIONS,
    }
}
STEALTH_SESSIONS = {
    "FLOW_MAP": "tests.flows.flow_map",
    # Not the default (None): the suite runs scheduled steps on RQ.
    "SCHEDULER": "stealth_sessions.scheduling.rq_engine.RQStepScheduler",
}

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
RQ_QUEUES = {"default": {"URL": RQ_URL}}

# -- the HTTP API (stealth_sessions.api) ------------------------------------------------------
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # the API's offline Swagger UI / Redoc
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "stealth_sessions API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
