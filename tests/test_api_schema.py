"""The OpenAPI schema, the offline docs pages, and the API fuzzed against its own schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import schemathesis
from django.contrib.auth.models import Permission, User
from django.contrib.staticfiles import finders
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from stealth_sessions.api import authentication

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_with_every_route(client):
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = json.loads(r.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/flows/",
        "/api/sessions/",
        "/api/sessions/stats/",
        "/api/sessions/{user_id}/",
        "/api/sessions/{user_id}/step_to/",
        "/api/sessions/{user_id}/step_back/",
        "/api/sessions/{user_id}/back_to/",
        "/api/sessions/{user_id}/step_to_in/",
        "/api/sessions/{user_id}/step_to_at/",
        "/api/sessions/{user_id}/scheduled/",
        "/api/sessions/{user_id}/scheduled/{step_id}/",
    }
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    step_to = schema["paths"]["/api/sessions/{user_id}/step_to/"]["post"]
    assert {p["name"] for p in step_to["parameters"]} >= {"If-Match", "Idempotency-Key"}
    assert {"200", "400", "401", "403", "409", "412", "422", "503"} <= set(step_to["responses"])


def test_docs_page_uses_local_static_files_only(client):
    html = client.get("/api/docs/").content.decode()
    assert "cdn" not in html.lower() and "https://" not in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


# -- fuzzing ------------------------------------------------------------------------------


@pytest.fixture
def api_schema(db):
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def token(db) -> str:
    authentication._cache.clear()
    user = User.objects.create_user("fuzzer")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="stealth_sessions")
    )
    return Token.objects.create(user=user).key


def test_api_conforms_to_its_schema(api_schema, token, service):
    """No 5xx and no response the schema does not describe, for generated requests
    (every operation, bounded: about 25 examples each)."""
    service.step_to("fuzz", slug="hello->say_hello")
    headers = {"Authorization": f"Token {token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            # A schema-valid request may still be refused by the domain (unknown state, a
            # flow name that is not an identifier, no session): 400/404/409 are documented
            # answers, so "valid data must be accepted" does not apply here.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        fuzz()


def test_the_schema_and_docs_need_no_rest_framework_or_spectacular_settings(client, settings):
    """As the README's quickstart has it: no DEFAULT_SCHEMA_CLASS, no SPECTACULAR_SETTINGS."""
    del settings.REST_FRAMEWORK
    del settings.SPECTACULAR_SETTINGS
    r = client.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200, r.content[:500]
    schema = json.loads(r.content)
    assert "/api/sessions/{user_id}/step_to/" in schema["paths"]
    assert not {"/api/schema/", "/api/docs/"} & set(schema["paths"])
    r = client.get("/api/docs/")
    assert r.status_code == 200 and b"swagger-ui" in r.content


def test_the_schema_builds_in_a_process_that_never_had_rest_framework_settings():
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/api/schema/', {'format': 'json'}); "
        "print(r.status_code, b'/api/sessions/{user_id}/step_to/' in r.content)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.bare_api_settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["200", "True"], done.stderr[-2000:]
