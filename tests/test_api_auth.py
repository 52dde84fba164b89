"""Authentication, permissions, the credentials cache, and throttling of the HTTP API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stealth_sessions.api import authentication

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_auth_cache")]

VIEW = {"content_type__app_label": "stealth_sessions", "codename": "view_session"}
CHANGE = {"content_type__app_label": "stealth_sessions", "codename": "change_session"}


@pytest.fixture
def bot() -> tuple[User, APIClient]:
    user = User.objects.create_user("bot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return user, client


def test_anonymous_is_401_with_www_authenticate():
    r = APIClient().get("/api/sessions/u1/")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert r["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401():
    r = APIClient().get("/api/sessions/u1/", HTTP_AUTHORIZATION="Token nope")
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("token {key}", 200),  # the keyword is case-insensitive, as in DRF
        ("Token  {key}", 200),  # DRF splits on any run of whitespace
        ("Token\t{key}", 200),
        ("Token {key} ", 200),
        ("Token", 401),
        ("Token {key} extra", 401),
        ("Token {key}\xe9", 401),
        ("Bearer {key}", 401),  # not ours: anonymous
    ],
)
def test_token_headers_are_read_as_drf_reads_them(bot, header, status):
    user, _ = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    key = Token.objects.get(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(key=key))
    assert client.get("/api/flows/").status_code == status


def test_permission_answers_are_kept_with_the_cached_user(bot):
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    ((_, cached, _),) = authentication._cache.entries.values()
    assert cached.stealth_sessions_perms == {"stealth_sessions.view_session": True}
    cached.stealth_sessions_perms["stealth_sessions.view_session"] = False  # the memo decides
    assert client.get("/api/flows/").status_code == 403


def test_a_revoked_permission_is_refused_at_once_though_answers_are_cached(bot):
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    assert client.get("/api/flows/").status_code == 200  # answered from the cached user
    user.user_permissions.remove(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 403


def test_view_session_reads_change_session_writes(bot):
    user, client = bot
    assert client.get("/api/flows/").status_code == 403
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    assert client.get("/api/sessions/").status_code == 200
    for method, path in [
        ("post", "/api/sessions/u1/step_to/"),
        ("put", "/api/sessions/u1/"),
        ("delete", "/api/sessions/u1/"),
        ("post", "/api/sessions/u1/step_to_in/"),
        ("delete", "/api/sessions/u1/scheduled/"),
    ]:
        r = getattr(client, method)(path, {"flow": "hello"}, format="json")
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", (method, path)
    user.user_permissions.add(Permission.objects.get(**CHANGE))
    assert (
        client.post("/api/sessions/u1/step_to/", {"flow": "hello"}, format="json").status_code
        == 200
    )


def test_group_permissions_count(bot):
    user, client = bot
    group = Group.objects.create(name="bots")
    group.permissions.add(Permission.objects.get(**VIEW))
    user.groups.add(group)
    assert client.get("/api/sessions/").status_code == 200
    group.permissions.clear()  # m2m_changed: the cache forgets at once
    assert client.get("/api/sessions/").status_code == 403


def test_session_login_works_too(client):
    user = User.objects.create_user("admin-ish", password="pw")
    user.user_permissions.add(Permission.objects.get(**VIEW))
    client.force_login(user)
    assert client.get("/api/sessions/").status_code == 200


def test_warm_requests_make_no_database_query(bot):
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    client.get("/api/flows/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/flows/").status_code == 200
    assert len(queries) == 0


def test_deleting_a_token_revokes_it_at_once(bot):
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    Token.objects.filter(user=user).delete()
    assert client.get("/api/flows/").status_code == 401


def test_deactivating_a_user_revokes_at_once(bot):
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/flows/").status_code == 401


def test_other_processes_see_the_generation_change(bot, settings):
    """Another process's change bumps the shared generation; this one drops its cache."""
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    assert client.get("/api/flows/").status_code == 200
    # As if another process removed the permission: the DB changes, our local cache does not…
    user.user_permissions.through.objects.filter(user=user).delete()  # no m2m_changed signal
    assert client.get("/api/flows/").status_code == 200  # still cached (bounded by the TTL)
    # …until that process bumps the generation and our next check (once per interval) sees it.
    from django.core.cache import cache

    cache.set(authentication.GENERATION_KEY, "from-elsewhere", None)
    authentication._cache.checked = float("-inf")
    assert client.get("/api/flows/").status_code == 403


def test_ttl_zero_disables_the_cache(bot, settings):
    settings.STEALTH_SESSIONS_API = {"AUTH_CACHE_TTL": 0}
    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    client.get("/api/flows/")
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/flows/")
    assert len(queries) >= 1


def test_permission_classes_are_configurable(bot, settings):
    settings.STEALTH_SESSIONS_API = {
        "PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]
    }
    _, client = bot
    assert client.get("/api/flows/").status_code == 200


def test_throttling_by_scope(bot, settings):
    from django.core.cache import cache

    user, client = bot
    user.user_permissions.add(Permission.objects.get(**VIEW))
    settings.REST_FRAMEWORK = {
        **getattr(settings, "REST_FRAMEWORK", {}),
        "DEFAULT_THROTTLE_RATES": {"stealth_sessions_read": "2/min"},
    }
    cache.clear()
    assert [client.get("/api/flows/").status_code for _ in range(3)] == [200, 200, 429]
    r = client.get("/api/flows/")
    assert r.json()["code"] == "throttled" and int(r["Retry-After"]) > 0
    # Writes have their own scope, unthrottled here (403: no change_session).
    assert (
        client.post("/api/sessions/u/step_to/", {"flow": "hello"}, format="json").status_code == 403
    )
