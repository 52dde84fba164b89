"""The HTTP API, route by route and error by error, against the suite's real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from stealth_sessions import signals
from stealth_sessions.api import authentication
from stealth_sessions.exceptions import SessionStoreUnavailable
from stealth_sessions.service import SessionService

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_auth_cache")]


def make_client(*perms: str) -> APIClient:
    user = User.objects.create_user(f"bot{User.objects.count()}")
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="stealth_sessions", codename=codename)
        )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.user = user  # type: ignore[attr-defined]
    return client


@pytest.fixture
def api() -> APIClient:
    return make_client("view_session", "change_session")


def url(user_id: str, action: str = "") -> str:
    return f"/api/sessions/{quote(user_id, safe='')}/" + (f"{action}/" if action else "")


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]


# -- reading ------------------------------------------------------------------------------


def test_get_returns_the_session_with_its_version_as_etag(api, service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to("u1", state="ask_name")
    r = api.get(url("u1"))
    assert r.status_code == 200
    assert r["ETag"] == '"2"'
    assert r.json() == {
        "user_id": "u1",
        "slug": "hello->ask_name",
        "flow": "hello",
        "state": "ask_name",
        "previous": "hello->say_hello",
        "back_to": None,
        "version": 2,
        "ttl": None,
        "scheduled": [],
    }


def test_get_of_a_user_without_session_is_404_no_session(api):
    assert_error(api.get(url("nobody")), 404, "no_session")


@pytest.mark.parametrize(
    "user_id", ["+33 6 12", "+33612345678", "a.b:c@d%e", "ünï©ødé", "日本", "x" * 256, "%ED%A0%80"]
)
def test_user_ids_with_special_characters_round_trip(api, user_id):
    if " " in user_id:
        r = api.post(url(user_id, "step_to"), {"slug": "hello->say_hello"}, format="json")
        assert_error(r, 400, "invalid_user_id")
        return
    r = api.post(url(user_id, "step_to"), {"slug": "hello->say_hello"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["user_id"] == user_id
    assert api.get(url(user_id)).json()["user_id"] == user_id


@pytest.mark.parametrize(
    "raw_path", ["*", "{", "}", "%20", "a%20b", "%00", "%0A", "x" * 10_000, "%ED%A0%80%FF", "%C3"]
)
def test_hostile_user_ids_never_give_a_500(api, raw_path):
    for method in ("get", "put", "delete"):
        r = getattr(api, method)(
            f"/api/sessions/{raw_path}/", {"slug": "hello->say_hello"}, format="json"
        )
        assert r.status_code in (200, 204, 400, 404), (method, raw_path, r.content)
    r = api.post(f"/api/sessions/{raw_path}/step_to/", {"slug": "hello->say_hello"}, format="json")
    assert r.status_code in (200, 400), r.content


def test_too_long_user_id_is_400_invalid_user_id(api):
    assert_error(api.get(url("x" * 257)), 400, "invalid_user_id")


def test_list_filters_by_flow_state_and_user_id_prefix(api, service):
    for uid, slug in [
        ("a1", "hello->say_hello"),
        ("a2", "hello->ask_name"),
        ("b1", "goodbye->say_bye"),
    ]:
        service.step_to(uid, slug=slug)
        time.sleep(0.002)  # a millisecond apart: newest first is b1, a2, a1
    ids = lambda r: [x["user_id"] for x in r.json()["results"]]  # noqa: E731
    assert ids(api.get("/api/sessions/")) == ["b1", "a2", "a1"]  # newest activity first
    assert ids(api.get("/api/sessions/", {"flow": "hello"})) == ["a2", "a1"]
    assert ids(api.get("/api/sessions/", {"user_id": "a"})) == ["a1", "a2"]  # by user id
    assert ids(api.get("/api/sessions/", {"flow": "hello", "state": "ask_name"})) == ["a2"]
    assert ids(api.get("/api/sessions/", {"user_id": "b"})) == ["b1"]
    item = api.get("/api/sessions/", {"user_id": "a1"}).json()["results"][0]
    assert item["slug"] == "hello->say_hello" and "scheduled" not in item


def test_list_pages_with_a_cursor(api, service):
    for i in range(5):
        service.step_to(f"u{i}", slug="hello->say_hello")
        time.sleep(0.002)
    seen, r = [], api.get("/api/sessions/", {"limit": 2})
    while True:
        body = r.json()
        seen += [x["user_id"] for x in body["results"]]
        if body["next"] is None:
            assert body["next_cursor"] is None
            break
        assert f"cursor={body['next_cursor']}" in body["next"]
        r = api.get(body["next"])
    assert seen == ["u4", "u3", "u2", "u1", "u0"]


@pytest.mark.parametrize(
    "query, code",
    [
        ({"state": "ask_name"}, "state_needs_flow"),
        ({"limit": 0}, "min_value"),
        ({"limit": "x"}, "invalid"),
        ({"flow": "bad flow"}, "invalid_slug"),
        ({"user_id": "a b"}, "invalid_user_id"),
        ({"cursor": "forged"}, "invalid_cursor"),
    ],
)
def test_list_rejects_bad_filters(api, query, code):
    assert_error(api.get("/api/sessions/", query), 400, code)


def test_stats_counts_users_per_flow_and_state(api, service):
    service.step_to("a", slug="hello->say_hello")
    service.step_to("b", slug="hello->say_hello")
    service.step_to("c", slug="goodbye->say_bye")
    assert api.get("/api/sessions/stats/").json() == {
        "total": 3,
        "flows": {
            "goodbye": {"total": 1, "states": {"say_bye": 1}},
            "hello": {"total": 2, "states": {"say_hello": 2}},
        },
        "slugs": {"hello->say_hello": 2, "goodbye->say_bye": 1},
    }


def test_flows_describes_the_flow_map(api):
    flows = {f["name"]: f for f in api.get("/api/flows/").json()["flows"]}
    assert list(flows) == ["hello", "goodbye", "follow_up"]
    hello = flows["hello"]
    assert hello["initial_state"] == "say_hello"
    assert [s["name"] for s in hello["states"]] == ["say_hello", "ask_name", "old_name", "get_name"]
    assert hello["states"][1] == {
        "name": "ask_name",
        "slug": "hello->ask_name",
        "fails_to": "hello->say_hello",
        "redirects_to": None,
    }
    assert hello["states"][2]["redirects_to"] == "goodbye->say_bye"


# -- writing ------------------------------------------------------------------------------


def test_put_is_update_session_to_and_does_not_run_actions(api, record):
    from stealth_sessions import signals

    rec = record(signals.post_transition)
    r = api.put(url("u1"), {"flow": "hello", "state": "ask_name"}, format="json")
    assert r.status_code == 200 and r.json()["slug"] == "hello->ask_name"
    assert r["ETag"] == '"1"'
    assert rec.calls[0]["method"] == "update_session_to" and rec.calls[0]["run_action"] is False
    assert api.put(url("u1"), {"slug": "goodbye->say_bye"}, format="json").json()["version"] == 2


def test_step_to_runs_actions_and_accepts_each_target_form(api, record):
    from stealth_sessions import signals

    rec = record(signals.post_transition)
    assert (
        api.post(url("u1", "step_to"), {"flow": "hello"}, format="json").json()["slug"]
        == "hello->say_hello"
    )
    assert (
        api.post(url("u1", "step_to"), {"state": "ask_name"}, format="json").json()["slug"]
        == "hello->ask_name"
    )
    r = api.post(url("u1", "step_to"), {"slug": "hello->old_name"}, format="json")
    assert r.json()["slug"] == "goodbye->say_bye"  # redirected
    assert [c["run_action"] for c in rec.calls] == [True, True, True]


def test_back_to_then_step_back(api):
    api.post(url("u1", "step_to"), {"slug": "hello->say_hello"}, format="json")
    r = api.post(url("u1", "back_to"), {"slug": "hello->ask_name"}, format="json")
    assert r.status_code == 200 and r.json()["back_to"] == "hello->ask_name"
    api.post(url("u1", "step_to"), {"slug": "goodbye->say_bye"}, format="json")
    r = api.post(url("u1", "step_back"), {}, format="json")
    assert r.status_code == 200 and r.json()["slug"] == "hello->ask_name"
    assert api.post(url("u1", "step_back"), format="json").status_code == 200  # no body at all


def test_step_back_without_back_to_is_409_no_back_to(api):
    api.post(url("u1", "step_to"), {"slug": "hello->say_hello"}, format="json")
    assert_error(api.post(url("u1", "step_back"), {}, format="json"), 409, "no_back_to")


def test_delete_resets_the_session(api, service):
    service.step_to("u1", slug="hello->say_hello")
    r = api.delete(url("u1"))
    assert r.status_code == 204 and r.content == b""
    assert service.get("u1") is None
    assert api.delete(url("u1")).status_code == 204  # idempotent


@pytest.mark.parametrize(
    "body, code",
    [
        ({"slug": "nope"}, "invalid_slug"),
        ({"slug": "hello->nope"}, "invalid_transition"),
        ({"flow": "nope"}, "invalid_transition"),
        ({"flow": "hello", "state": "bad name"}, "invalid_slug"),
        ({"slug": "hello->say_hello", "flow": "hello"}, "invalid_target"),
        ({}, "invalid_target"),
        ({"slug": "hello->say_hello", "sulg": "x"}, "unknown_field"),
        ({"slug": None}, "null"),
        ({"slug": ""}, "blank"),
        ({"slug": "hello->" + "x" * 194}, "max_length"),
        ({"slug": "hello->say\x00hello"}, "null_characters_not_allowed"),
        ({"slug": 5}, "invalid_slug"),
        ({"flow": "hello", "state": ["ask_name"]}, "invalid"),
        ({"flow": "hello", "slug": "hello->say_hello"}, "invalid_target"),
        ({"sulg": "hello->say_hello"}, "unknown_field"),
        ([1, 2], "invalid"),
    ],
)
def test_bad_targets_are_400_with_a_code(api, body, code):
    api.post(url("u1", "step_to"), {"slug": "hello->say_hello"}, format="json")
    for method, path in [
        ("post", url("u1", "step_to")),
        ("put", url("u1")),
        ("post", url("u1", "back_to")),
    ]:
        assert_error(getattr(api, method)(path, body, format="json"), 400, code)


def test_state_alone_without_a_session_is_400_invalid_transition(api):
    assert_error(
        api.post(url("new", "step_to"), {"state": "ask_name"}, format="json"),
        400,
        "invalid_transition",
    )


def test_malformed_json_is_400_parse_error(api):
    r = api.generic("POST", url("u1", "step_to"), b"{nope", content_type="application/json")
    assert_error(r, 400, "parse_error")


def test_validation_errors_list_every_field(api):
    body = api.post(url("u1", "step_to"), {"a": 1, "b": 2}, format="json").json()
    assert body["errors"] == {
        "a": [{"message": "Unknown field.", "code": "unknown_field"}],
        "b": [{"message": "Unknown field.", "code": "unknown_field"}],
    }


def test_form_bodies_are_415(api):
    r = api.post(url("u1", "step_to"), {"slug": "hello->say_hello"})  # multipart
    assert_error(r, 415, "unsupported_media_type")


def test_unknown_method_is_405(api):
    assert_error(api.patch(url("u1"), {}, format="json"), 405, "method_not_allowed")


# -- If-Match -----------------------------------------------------------------------------


def test_if_match_makes_writes_conditional(api):
    r = api.post(url("u1", "step_to"), {"slug": "hello->say_hello"}, format="json")
    etag = r["ETag"]
    r = api.post(url("u1", "step_to"), {"state": "ask_name"}, format="json", HTTP_IF_MATCH=etag)
    assert r.status_code == 200 and r["ETag"] == '"2"'
    stale = api.post(url("u1", "step_to"), {"state": "get_name"}, format="json", HTTP_IF_MATCH=etag)
    assert_error(stale, 412, "precondition_failed")
    assert stale.json()["current_version"] == 2
    for method, path, body in [
        ("put", url("u1"), {"slug": "goodbye->say_bye"}),
        ("post", url("u1", "back_to"), {"slug": "goodbye->say_bye"}),
        ("post", url("u1", "step_back"), {}),
        ("delete", url("u1"), None),
    ]:
        r = getattr(api, method)(path, body, format="json", HTTP_IF_MATCH=etag)
        assert_error(r, 412, "precondition_failed")
    assert api.delete(url("u1"), HTTP_IF_MATCH='"2"').status_code == 204


def test_if_match_zero_means_no_session_yet(api):
    assert (
        api.post(
            url("new", "step_to"), {"flow": "hello"}, format="json", HTTP_IF_MATCH='"0"'
        ).status_code
        == 200
    )
    assert_error(
        api.post(url("new", "step_to"), {"flow": "hello"}, format="json", HTTP_IF_MATCH='"0"'),
        412,
        "precondition_failed",
    )


def test_if_match_star_means_any_version(api):
    assert (
        api.post(
            url("u1", "step_to"), {"flow": "hello"}, format="json", HTTP_IF_MATCH="*"
        ).status_code
        == 200
    )


@pytest.mark.parametrize("value", ["2", 'W/"1"', '"a"', '"1", "2"', '"-1"', '"' + "9" * 30 + '"'])
def test_malformed_if_match_is_400(api, value):
    assert_error(
        api.post(url("u1", "step_to"), {"flow": "hello"}, format="json", HTTP_IF_MATCH=value),
        400,
        "invalid_if_match",
    )


def test_conflict_without_if_match_is_409(api, monkeypatch):
    from stealth_sessions.exceptions import SessionConflict

    def racing(*args, **kwargs):
        raise SessionConflict("u1", 3, 4)

    monkeypatch.setattr(SessionService, "step_to", racing)
    r = api.post(url("u1", "step_to"), {"flow": "hello"}, format="json")
    assert_error(r, 409, "conflict")
    assert r.json()["current_version"] == 4


# -- Idempotency-Key ----------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_returns_the_first_result(api, service):
    body = {"slug": "hello->say_hello"}
    first = api.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again["ETag"] == first["ETag"] == '"1"'
    assert again["Idempotent-Replayed"] == "true"
    assert service.get("u1").version == 1  # stepped once
    other = api.post(
        url("u1", "step_to"), {"state": "ask_name"}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert other.json()["version"] == 2


def test_the_same_key_with_another_body_is_422(api):
    api.post(
        url("u1", "step_to"), {"slug": "hello->say_hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    r = api.post(
        url("u1", "step_to"), {"slug": "hello->ask_name"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert_error(r, 422, "idempotency_key_reused")


def test_keys_are_per_caller_and_per_route(api, service):
    other = make_client("view_session", "change_session")
    body = {"state": "ask_name"}
    api.post(url("u1", "step_to"), {"flow": "hello"}, format="json")
    api.post(url("u2", "step_to"), {"flow": "hello"}, format="json")
    assert (
        api.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k").json()[
            "version"
        ]
        == 2
    )
    # Another caller with the same key is another request: it runs (the user slides in place).
    r = other.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 200 and not r.has_header("Idempotent-Replayed")
    # Another route (user) with the same key runs too.
    assert (
        api.post(url("u2", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k").json()[
            "version"
        ]
        == 2
    )


def test_errors_are_not_stored_so_a_retry_runs_again(api):
    body = {"state": "ask_name"}
    assert_error(
        api.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k"),
        400,
        "invalid_transition",
    )
    api.post(url("u1", "step_to"), {"flow": "hello"}, format="json")
    assert (
        api.post(url("u1", "step_to"), body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 200
    )


def test_a_key_in_use_by_a_running_request_is_409(api):
    from stealth_sessions.api.idempotency import IdempotencyRecord

    class Req:
        user, method, path = api.user, "POST", url("u1", "step_to")
        data = {"flow": "hello"}
        META: dict = {}

    assert IdempotencyRecord(Req(), "k").begin() is None  # a first request now holds the key
    r = api.post(url("u1", "step_to"), {"flow": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(r, 409, "idempotency_in_progress")
    assert r["Retry-After"] == "1"


def test_concurrent_identical_requests_transition_once(api, service):
    """Two requests racing with one key: cache.add lets exactly one reach the service."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    token = api._credentials["HTTP_AUTHORIZATION"]

    def post(_):
        client = APIClient()
        try:
            return client.post(
                url("u1", "step_to"),
                {"flow": "hello"},
                format="json",
                HTTP_AUTHORIZATION=token,
                HTTP_IDEMPOTENCY_KEY="race",
            ).status_code
        finally:
            connections.close_all()

    authentication.CachedTokenAuthentication().authenticate_credentials(
        token.split()[1]
    )  # warm: no DB in threads
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(8)))
    assert set(codes) <= {200, 409} and 200 in codes
    assert service.get("u1").version == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_malformed_idempotency_keys_are_400(api, key):
    r = api.post(url("u1", "step_to"), {"flow": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert_error(r, 400, "invalid_idempotency_key")


# -- Redis down ---------------------------------------------------------------------------


def test_redis_unavailable_is_503_with_retry_after(api, monkeypatch):
    def down(*args, **kwargs):
        raise SessionStoreUnavailable(
            "Redis failed while reading: Connection refused 10.0.0.1:6379"
        )

    monkeypatch.setattr(SessionService, "get_with_scheduled", down)
    r = api.get(url("u1"))
    assert_error(r, 503, "store_unavailable")
    assert r["Retry-After"] == "1"
    assert "10.0.0.1" not in r.content.decode()


def test_idempotency_cache_down_is_503(api, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(type(caches["default"]), "add", down)
    r = api.post(url("u1", "step_to"), {"flow": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error(r, 503, "store_unavailable")


def test_with_redis_really_stopped_every_route_is_503(api, settings):
    """A cache pointing at a closed port: no 500, no hang."""
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:9/0"},
    }
    try:
        assert_error(api.get(url("u1")), 503, "store_unavailable")
        assert_error(
            api.post(url("u1", "step_to"), {"flow": "hello"}, format="json"),
            503,
            "store_unavailable",
        )
        assert_error(api.get("/api/sessions/"), 503, "store_unavailable")
    finally:
        caches["default"].close()


# -- scheduling ---------------------------------------------------------------------------


def test_every_session_response_lists_the_pending_steps(api, service):
    service.step_to("u1", slug="hello->say_hello")
    service.step_to_in("u1", 60, slug="follow_up->nudge")
    expected = api.get(url("u1", "scheduled")).json()
    assert len(expected) == 1
    responses = [
        api.get(url("u1")),
        api.post(url("u1", "step_to"), {"slug": "hello->ask_name"}, format="json"),
        api.put(url("u1"), {"state": "get_name"}, format="json"),
        api.post(url("u1", "back_to"), {"slug": "hello->say_hello"}, format="json"),
        api.post(url("u1", "step_back"), format="json"),
        api.post(url("u1", "step_back"), {}, format="json"),
    ]
    for r in responses:
        assert r.status_code == 200, r.content
        assert r.json()["scheduled"] == expected


def test_a_step_scheduled_by_the_action_shows_in_the_step_to_response(api, service, receiver):
    def nudge(sender, *, user_id, target, **kwargs):
        if target == "hello->ask_name":
            service.step_to_in(user_id, 3600, slug="follow_up->nudge")

    receiver(signals.post_transition, nudge)
    r = api.post(url("u1", "step_to"), {"slug": "hello->ask_name"}, format="json")
    assert r.status_code == 200, r.content
    assert [step["target"] for step in r.json()["scheduled"]] == ["follow_up->nudge"]


def test_scheduling_routes_answer_501_when_scheduling_is_disabled(api, settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": None}
    calls = [
        api.post(url("u1", "step_to_in"), {"slug": "follow_up->nudge", "delay": 60}, format="json"),
        api.post(
            url("u1", "step_to_at"),
            {"slug": "follow_up->nudge", "at": "2030-01-01T09:00:00+01:00"},
            format="json",
        ),
        api.delete(url("u1", "scheduled")),
    ]
    for r in calls:
        assert r.status_code == 501, r.content
        assert r.json()["code"] == "scheduling_disabled"


def test_step_to_in_schedules_and_shows_in_the_session(api, service):
    service.step_to("u1", slug="hello->say_hello")
    r = api.post(url("u1", "step_to_in"), {"slug": "follow_up->nudge", "delay": 60}, format="json")
    assert r.status_code == 201, r.content
    step = r.json()["step"]
    assert step["target"] == "follow_up->nudge" and step["if_unchanged"] is False
    assert r.json()["session"]["scheduled"] == [step]
    assert api.get(url("u1")).json()["scheduled"] == [step]
    assert api.get(url("u1", "scheduled")).json() == [step]
    due = datetime.fromisoformat(step["due"])
    assert timedelta(seconds=55) < due - datetime.now(UTC) <= timedelta(seconds=60)


@pytest.mark.parametrize("delay", ["PT5M", "P1D", 0.5, "00:05:00"])
def test_step_to_in_takes_seconds_or_an_iso_8601_duration(api, delay):
    r = api.post(
        url("u1", "step_to_in"),
        {"flow": "follow_up", "delay": delay, "if_unchanged": True},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["step"]["if_unchanged"] is True
    assert r.json()["session"] is None  # scheduling does not create a session


@pytest.mark.parametrize(
    "delay", [0, -1, "P0D", "-PT5M", "soon", True, None, 1e300, "P100000D", [1]]
)
def test_bad_delays_are_400_invalid_delay(api, delay):
    r = api.post(url("u1", "step_to_in"), {"flow": "follow_up", "delay": delay}, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["code"] in ("invalid_delay", "null")


def test_step_to_at_takes_an_aware_time(api):
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    local = at.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    r = api.post(url("u1", "step_to_at"), {"slug": "follow_up->nudge", "at": local}, format="json")
    assert r.status_code == 201, r.content
    assert datetime.fromisoformat(r.json()["step"]["due"]) == at


@pytest.mark.parametrize(
    "at, code",
    [
        ("2030-01-01T09:00:00", "naive_datetime"),
        ("tomorrow", "invalid_datetime"),
        ("2030-13-01T09:00:00Z", "invalid_datetime"),
        ("0001-01-01T00:00:00+01:00", "invalid_datetime"),
        (12, "invalid_datetime"),
    ],
)
def test_bad_times_are_400(api, at, code):
    assert_error(
        api.post(url("u1", "step_to_at"), {"flow": "follow_up", "at": at}, format="json"), 400, code
    )


def test_scheduling_validates_the_target_now(api):
    r = api.post(url("u1", "step_to_in"), {"slug": "hello->nope", "delay": 5}, format="json")
    assert_error(r, 400, "invalid_transition")
    r = api.post(url("u1", "step_to_in"), {"flow": "hello", "delay": 5, "extra": 1}, format="json")
    assert_error(r, 400, "unknown_field")


def test_cancel_one_then_all_scheduled_steps(api):
    ids = [
        api.post(url("u1", "step_to_in"), {"flow": "follow_up", "delay": d}, format="json").json()[
            "step"
        ]["id"]
        for d in (10, 20, 30)
    ]
    assert api.delete(url("u1", f"scheduled/{ids[0]}")).status_code == 204
    assert_error(api.delete(url("u1", f"scheduled/{ids[0]}")), 404, "no_scheduled_step")
    assert_error(api.delete(url("u1", "scheduled/not-an-id")), 404, "no_scheduled_step")
    assert [s["id"] for s in api.get(url("u1", "scheduled")).json()] == ids[1:]
    r = api.delete(url("u1", "scheduled"))
    assert r.status_code == 200 and r.json() == {"cancelled": 2}
    assert api.get(url("u1", "scheduled")).json() == []


def test_scheduling_posts_are_idempotent_too(api):
    body = {"flow": "follow_up", "delay": 60}
    a = api.post(url("u1", "step_to_in"), body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    b = api.post(url("u1", "step_to_in"), body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert len(api.get(url("u1", "scheduled")).json()) == 1


def test_scheduled_of_a_bad_user_id_is_400(api):
    assert_error(api.get(url("x" * 300, "scheduled")), 400, "invalid_user_id")


# -- responses ------------------------------------------------------------------------------


def _negotiated(view_class, accept: str = "application/json"):
    from rest_framework.test import APIRequestFactory

    view = view_class(action_map={"get": "retrieve"})
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    view.request = view.initialize_request(
        APIRequestFactory().get("/api/sessions/u1/", HTTP_ACCEPT=accept)
    )
    negotiated = view.perform_content_negotiation(view.request)
    view.request.accepted_renderer, view.request.accepted_media_type = negotiated
    return view


def test_responses_are_rendered_at_once_with_the_bytes_and_headers_drf_gives():
    from rest_framework.response import Response

    from stealth_sessions.api.views import RenderedResponse, SessionViewSet

    view = _negotiated(SessionViewSet)
    data = {"slug": "é->x", "odd": '\u2028\u2029"\\', "none": None, "list": [1, {"x": True}]}
    fast = view.respond(data, 201, {"ETag": '"3"'})
    drf = Response(data, status=201, headers={"ETag": '"3"'})
    drf.accepted_renderer = view.request.accepted_renderer
    drf.accepted_media_type = view.request.accepted_media_type
    drf.renderer_context = view.get_renderer_context()
    drf.render()
    assert type(fast) is RenderedResponse and fast.data == data
    assert (fast.status_code, fast.content, dict(fast.items())) == (
        drf.status_code,
        drf.content,
        dict(drf.items()),
    )


def test_a_viewset_with_other_renderers_gets_drf_responses():
    from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
    from rest_framework.response import Response

    from stealth_sessions.api.views import SessionViewSet

    class Browsable(SessionViewSet):
        renderer_classes = [JSONRenderer, BrowsableAPIRenderer]

    assert type(_negotiated(Browsable, "text/html").respond({"a": 1})) is Response


def test_an_empty_body_gets_a_drf_response():
    """DRF drops the Content-Type of an empty body; a plain response would keep it."""
    from rest_framework.response import Response

    from stealth_sessions.api.views import SessionViewSet

    assert type(_negotiated(SessionViewSet).respond(None, 204)) is Response


# -- a locked user: another owner is handling their message -----------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.post(url("u1", "step_to"), {"slug": "goodbye->say_bye"}, format="json"),
        lambda api: api.put(url("u1"), {"slug": "goodbye->say_bye"}, format="json"),
        lambda api: api.post(url("u1", "back_to"), {"slug": "hello->say_hello"}, format="json"),
        lambda api: api.post(url("u1", "step_back"), format="json"),
        lambda api: api.delete(url("u1")),
    ],
    ids=["step_to", "put", "back_to", "step_back", "reset"],
)
def test_writes_on_a_locked_user_are_409_session_locked_with_retry_after(api, service, call):
    service.step_to("u1", slug="hello->say_hello")
    service.set_back_to("u1", slug="hello->ask_name")
    with service.lock("u1", timeout=20):
        r = call(api)
    assert_error(r, 409, "session_locked")
    assert 1 <= int(r["Retry-After"]) <= 20
    assert datetime.fromisoformat(r.json()["locked_until"]) > datetime.now(UTC)
    assert service.peek("u1").version == 2


# -- scheduled steps' data ----------------------------------------------------------------------


def test_a_steps_data_is_accepted_and_shown(api):
    body = {"slug": "follow_up->nudge", "delay": 60, "data": {"target_id": "page-7"}}
    step = api.post(url("u1", "step_to_in"), body, format="json").json()["step"]
    assert step["data"] == {"target_id": "page-7"} and step["retries"] == 0
    at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"slug": "follow_up->nudge", "at": at, "data": {"n": 1}}
    assert api.post(url("u1", "step_to_at"), body, format="json").json()["step"]["data"] == {"n": 1}
    listed = api.get(url("u1", "scheduled")).json()
    assert [s["data"] for s in listed] == [{"target_id": "page-7"}, {"n": 1}]
    plain = {"slug": "follow_up->nudge", "delay": 60}
    assert api.post(url("u1", "step_to_in"), plain, format="json").json()["step"]["data"] is None


@pytest.mark.parametrize("data", [[1, 2], "page-7", {"big": "x" * 5000}])
def test_bad_step_data_is_400_invalid_schedule(api, data):
    body = {"slug": "follow_up->nudge", "delay": 60, "data": data}
    assert_error(api.post(url("u1", "step_to_in"), body, format="json"), 400, "invalid_schedule")
    assert api.get(url("u1", "scheduled")).json() == []
