"""The session admin: pages, permissions, confirmations, CSRF, the admin log, Redis down."""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from stealth_sessions import signals
from stealth_sessions.service import get_session_service

pytestmark = pytest.mark.django_db

LIST = "/admin/stealth_sessions/session/"


def change_url(user_id: str) -> str:
    return reverse("admin:stealth_sessions_session_change", args=[quote(user_id)])


def url(name: str, *args: str) -> str:
    return reverse(f"admin:stealth_sessions_session_{name}", args=[quote(a) for a in args])


def staff(*perms: str) -> Client:
    user = User.objects.create_user(f"staff{len(perms)}{'_'.join(perms)}", password="pw")
    user.is_staff = True
    user.save()
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label="stealth_sessions")
        )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def in_request(settings):
    """No task engine: the bulk changes of a state run inside the request (with one, they run
    in the background: tests/test_bulk_jobs.py)."""
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SCHEDULER": None}


@pytest.fixture
def people(service):
    service.step_to("+4412", slug="hello->say_hello")
    service.step_to("+4412", slug="hello->ask_name")
    time.sleep(0.002)  # a millisecond apart: "newest first" is zoë, a/b, +4412
    service.step_to("a/b", slug="goodbye->say_bye")
    time.sleep(0.002)
    service.step_to("zoë", slug="hello->ask_name")
    return service


# -- the index and the list -----------------------------------------------------------------


def test_sessions_is_on_the_admin_index(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert f'href="{LIST}"' in page and ">Sessions<" in page


def test_the_list_shows_every_column_newest_first(admin_client, people):
    people.step_to_in("zoë", 600, slug="goodbye->say_bye")
    page = admin_client.get(LIST).content.decode()
    assert page.index("zoë") < page.index("a/b") < page.index("+4412")
    for column in ("User id", "Current", "Previous", "Back-to", "Expires in", "Last activity"):
        assert f">{column}</span>" in page
    # +4412's previous, which may wrap after its "->" only
    assert '<span class="ss-nw">hello-&gt;</span><wbr><span class="ss-nw">say_hello</span>' in page
    assert "just now" in page and "0 minutes" not in page
    assert f'href="{change_url("a/b")}"' in page
    assert '<td class="field-pending_steps">1</td>' in page
    assert "3 sessions" in page


def test_filters_show_live_counts(admin_client, people):
    page = admin_client.get(LIST).content.decode()
    assert "hello (2)" in page and "goodbye (1)" in page
    assert "hello-&gt;ask_name (2)" in page
    page = admin_client.get(LIST, {"slug": "hello->ask_name"}).content.decode()
    assert "a/b" not in page and "zoë" in page and "+4412" in page
    page = admin_client.get(LIST, {"flow": "goodbye"}).content.decode()
    assert "a/b" in page and "zoë" not in page


def test_search_by_exact_and_prefix_user_id(admin_client, people):
    people.step_to("+44123", slug="hello->say_hello")
    page = admin_client.get(LIST, {"q": "+4412"}).content.decode()
    assert "Exact match first" in page
    assert page.index(">+4412<") < page.index(">+44123<")
    page = admin_client.get(LIST, {"q": "+44"}).content.decode()
    assert "No exact match" in page and ">+44123<" in page and "zoë" not in page
    page = admin_client.get(LIST, {"q": "no such"}).content.decode()
    assert "Nothing to list" in page  # a space: not a user id, said plainly


def test_search_finds_a_user_id_by_its_end_or_any_part(admin_client, service):
    for user in ("whatsapp:+447700900015", "+447700900016", "psid-1"):
        service.step_to(user, slug="hello->say_hello")
    page = admin_client.get(LIST, {"q": "+447700900015"}).content.decode()
    assert ">whatsapp:+447700900015<" in page and "+447700900016" not in page
    page = admin_client.get(LIST, {"q": "7700900"}).content.decode()
    assert ">whatsapp:+447700900015<" in page and ">+447700900016<" in page
    assert "psid-1" not in page


def test_a_search_with_no_result_has_no_action_bar_and_a_way_back(admin_client, people):
    response = admin_client.get(LIST, {"q": "nobody", "flow": "hello"})
    page = response.content.decode()
    assert "No sessions for “nobody”." in page
    assert 'name="action"' not in page  # nothing to select, so no "Reset selected"
    assert response.context["clear_search_url"] == "?flow=hello"
    assert 'class="clear-search"' in page
    assert 'name="action"' in admin_client.get(LIST).content.decode()


def test_the_list_pages_with_a_cursor(admin_client, service, monkeypatch):
    from stealth_sessions.admin.options import SessionAdmin

    monkeypatch.setattr(SessionAdmin, "list_per_page", 2)
    for i in range(5):
        service.step_to(f"u{i}", slug="hello->say_hello")
        time.sleep(0.002)
    seen, url_, pages = [], LIST, []
    while url_:
        response = admin_client.get(url_ if url_.startswith("/") else LIST + url_)
        seen += [row["user_id"] for row in _rows(response)]
        pages.append(response)
        url_ = response.context["next_url"]
    assert seen == ["u4", "u3", "u2", "u1", "u0"]
    # "Previous page" leads back one page at a time, to the first (which has none).
    assert pages[0].context["previous_url"] is None
    back = pages[-1]
    for expected in (["u2", "u1"], ["u4", "u3"]):
        back = admin_client.get(LIST + back.context["previous_url"])
        assert [row["user_id"] for row in _rows(back)] == expected
    assert back.context["previous_url"] is None and back.context["first_url"] is None
    assert "Previous page" in pages[-1].content.decode()


def test_browsing_never_slides_expiry(admin_client, settings, redis_client):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 1000}
    service = get_session_service()
    service.step_to("u", slug="hello->say_hello")
    key = service.store.keys.user("u").session
    redis_client.pexpire(key, 500_000)
    for page in (LIST, LIST + "?q=u", change_url("u"), url("dashboard"), url("reset", "u")):
        assert admin_client.get(page).status_code == 200
    assert redis_client.pttl(key) <= 500_000


def test_the_dashboard_charts_users_per_flow_and_state(admin_client, people, redis_client):
    # A state renamed in a deploy still shows, flagged, with its users.
    people.step_to("old", slug="hello->say_hello")
    redis_client.set(people.store.keys.user("old").session, "hello->old_name_gone")
    people.get("old")  # re-indexes the hand-edited slug
    page = admin_client.get(url("dashboard")).content.decode()
    assert 'aria-label="2 users"' in page  # hello->ask_name
    assert "ss-unknown" in page and "old_name_gone" in page
    assert "4 sessions in all" in page


# -- one user ---------------------------------------------------------------------------------


def test_the_detail_page_shows_the_session_history_and_steps(admin_client, people):
    people.set_back_to("+4412", slug="hello->say_hello")
    people.step_to_in("+4412", 600, slug="goodbye->say_bye")
    page = admin_client.get(change_url("+4412")).content.decode()
    assert '<td id="ss-current">hello-&gt;ask_name' in page
    assert '<td id="ss-back_to">hello-&gt;say_hello' in page
    assert '<td id="ss-version">3' in page
    assert page.count('<td class="ss-origin">code</td>') == 2
    assert "goodbye-&gt;say_bye" in page and 'value="Cancel"' in page
    assert '<option value="hello-&gt;ask_name" selected>' in page  # choices from the flow map


def test_moving_a_user_goes_through_the_service_and_is_logged(admin_client, people, record):
    post = record(signals.post_transition)
    response = admin_client.post(
        change_url("+4412"),
        {"action": "move", "target": "goodbye->say_bye", "method": "step_to", "version": 2},
    )
    assert response.status_code == 302
    assert people.peek("+4412").slug == "goodbye->say_bye"
    assert post.calls[-1]["method"] == "step_to" and post.calls[-1]["run_action"] is True
    latest = people.history("+4412")[0]
    assert (latest.origin, latest.method, latest.target) == ("admin", "step_to", "goodbye->say_bye")
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.action_flag) == ("+4412", CHANGE)
    assert entry.get_change_message() == "step_to to goodbye->say_bye"
    history = admin_client.get(url("history", "+4412")).content.decode()
    assert "step_to to goodbye-&gt;say_bye" in history


def test_update_session_to_moves_without_the_action(admin_client, people, record):
    post = record(signals.post_transition)
    admin_client.post(
        change_url("zoë"),
        {
            "action": "move",
            "target": "hello->say_hello",
            "method": "update_session_to",
            "version": 1,
        },
    )
    assert people.peek("zoë").slug == "hello->say_hello"
    assert post.calls[-1]["run_action"] is False


def test_a_stale_form_changes_nothing(admin_client, people):
    response = admin_client.post(
        change_url("+4412"),
        {"action": "move", "target": "goodbye->say_bye", "method": "step_to", "version": 1},
        follow=True,
    )
    assert "changed meanwhile" in response.content.decode()
    assert people.peek("+4412").slug == "hello->ask_name"
    assert not LogEntry.objects.exists()


def test_an_unknown_target_is_a_form_error(admin_client, people):
    response = admin_client.post(
        change_url("+4412"),
        {"action": "move", "target": "hello->nope", "method": "step_to", "version": 2},
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert people.peek("+4412").slug == "hello->ask_name"


def test_moving_a_user_without_a_session_starts_one(admin_client, service):
    page = admin_client.get(change_url("new-user")).content.decode()
    assert "has no session" in page
    admin_client.post(
        change_url("new-user"),
        {"action": "move", "target": "hello->say_hello", "method": "step_to", "version": 0},
    )
    assert service.peek("new-user").slug == "hello->say_hello"


def test_set_back_to(admin_client, people):
    admin_client.post(
        change_url("a/b"), {"action": "back_to", "target": "hello->say_hello", "version": 1}
    )
    assert people.peek("a/b").back_to == "hello->say_hello"
    assert LogEntry.objects.get().get_change_message() == "set_back_to hello->say_hello"


def test_cancel_a_scheduled_step(admin_client, people):
    step = people.step_to_in("a/b", 600, slug="hello->say_hello")
    admin_client.post(change_url("a/b"), {"action": "cancel_step", "step_id": step.id})
    assert people.scheduled_steps("a/b") == []
    assert people.scheduled_step_outcomes("a/b")[0].outcome == "cancelled"


def test_reset_confirms_on_get_and_acts_on_post(admin_client, people, record):
    reset = record(signals.session_reset)
    page = admin_client.get(url("reset", "a/b")).content.decode()
    assert "Reset the session of <strong>a/b</strong>" in page
    assert people.peek("a/b") is not None
    response = admin_client.post(url("reset", "a/b"))
    assert response.status_code == 302 and people.peek("a/b") is None
    assert reset.calls[0]["user_id"] == "a/b"
    assert LogEntry.objects.get().action_flag == DELETION


@pytest.mark.parametrize(
    "user_id",
    ["*", "{", "a}:previous", "%", "_2F", "x" * 256, "zoë", "a/b", "<b>x</b>"]
    + ["state", "dashboard", "reset-state", "move-state", "reset-selected", "history"],
)
def test_hostile_user_ids_round_trip_through_urls(admin_client, service, user_id):
    service.step_to(user_id, slug="hello->say_hello")
    page = admin_client.get(change_url(user_id))
    assert page.status_code == 200 and page.context["user_id"] == user_id
    admin_client.post(url("reset", user_id))
    assert service.peek(user_id) is None


@pytest.mark.parametrize("bad", ["a%20b", "x" * 257, "a%00b"])
def test_an_impossible_user_id_is_a_404(admin_client, bad):
    assert admin_client.get(f"{LIST}{bad}/change/").status_code == 404


# -- bulk actions -----------------------------------------------------------------------------


def test_reset_selected_confirms_then_resets(admin_client, people):
    selected = {"action": "reset_selected", "_selected_action": ["+4412", "zoë"]}
    confirm = admin_client.post(url("reset_selected"), selected)
    assert confirm.status_code == 200
    assert '<strong id="ss-count">2</strong>' in confirm.content.decode()
    assert people.peek("zoë") is not None
    done = admin_client.post(url("reset_selected"), {**selected, "post": "yes"}, follow=True)
    assert "Reset 2 sessions." in done.content.decode()
    assert people.peek("+4412") is people.peek("zoë") is None
    assert people.peek("a/b") is not None
    assert sorted(LogEntry.objects.values_list("object_id", flat=True)) == ["+4412", "zoë"]


def test_reset_everyone_in_a_state(admin_client, in_request, people):
    page = admin_client.get(url("reset_state"), {"slug": "hello->ask_name"}).content.decode()
    assert '<strong id="ss-count">2</strong>' in page
    assert people.count_by_state()["hello->ask_name"] == 2
    done = admin_client.post(url("reset_state"), {"slug": "hello->ask_name"}, follow=True)
    assert "Reset 2 sessions at hello-&gt;ask_name." in done.content.decode()
    assert people.count_by_state() == {"goodbye->say_bye": 1}


def test_move_everyone_in_a_renamed_state(admin_client, in_request, people, redis_client, record):
    for user in ("r1", "r2", "r3"):
        people.step_to(user, slug="hello->say_hello")
        redis_client.set(people.store.keys.user(user).session, "hello->greet_v1")  # a renamed state
        people.get(user)
    post = record(signals.post_transition)
    page = admin_client.get(url("move_state"), {"slug": "hello->greet_v1"}).content.decode()
    assert '<strong id="ss-count">3</strong>' in page
    done = admin_client.post(
        url("move_state"), {"slug": "hello->greet_v1", "target": "hello->say_hello"}, follow=True
    )
    assert "Moved 3 sessions from hello-&gt;greet_v1 to hello-&gt;say_hello." in (
        done.content.decode()
    )
    assert {people.peek(u).slug for u in ("r1", "r2", "r3")} == {"hello->say_hello"}
    assert "hello->greet_v1" not in people.count_by_state()
    assert [c["method"] for c in post.calls] == ["update_session_to"] * 3
    assert people.history("r1")[0].origin == "admin"
    assert LogEntry.objects.filter(object_id="r2").count() == 1


def test_a_bulk_action_stopped_part_way_reports_and_logs_what_it_did(
    admin_client, in_request, service, receiver
):
    for i in range(5):
        service.step_to(f"b{i}", slug="hello->say_hello")
    entered = []

    def flaky_bot_action(sender, user_id, **kwargs):
        entered.append(user_id)
        if len(entered) == 3:
            raise RuntimeError("the bot's action failed")

    receiver(signals.post_transition, flaky_bot_action)
    done = admin_client.post(
        url("move_state"),
        {"slug": "hello->say_hello", "target": "goodbye->say_bye", "run_action": "on"},
        follow=True,
    )
    body = done.content.decode()
    # The third user was moved (the action runs after the write): moved, and logged.
    assert "Moved 3 sessions from hello-&gt;say_hello to goodbye-&gt;say_bye, then stopped" in body
    assert "RuntimeError: the bot&#x27;s action failed" in body
    assert sorted(LogEntry.objects.values_list("object_id", flat=True)) == sorted(entered)
    assert service.count_by_state() == {"hello->say_hello": 2, "goodbye->say_bye": 3}


def test_move_everyone_rejects_an_unknown_target(admin_client, people):
    response = admin_client.post(
        url("move_state"), {"slug": "hello->ask_name", "target": "hello->nope"}
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert people.count_by_state()["hello->ask_name"] == 2


def test_bulk_actions_act_only_on_post(admin_client, people):
    assert admin_client.get(url("reset_selected")).status_code == 302
    admin_client.get(url("reset_state"), {"slug": "hello->ask_name"})
    admin_client.get(url("move_state"), {"slug": "hello->ask_name"})
    assert people.count_by_state()["hello->ask_name"] == 2


# -- permissions and CSRF ---------------------------------------------------------------------


def _pages(user_id: str = "zoë") -> list[tuple[str, str, dict]]:
    move = {"action": "move", "target": "hello->say_hello", "method": "step_to", "version": 1}
    return [
        ("view", LIST, {}),
        ("view", url("dashboard"), {}),
        ("view", change_url(user_id), {}),
        ("view", url("history", user_id), {}),
        ("change", change_url(user_id), move),
        ("change", url("reset", user_id), {}),
        ("bulk", url("reset_selected"), {"_selected_action": [user_id], "post": "yes"}),
        ("bulk", url("reset_state") + "?slug=hello->ask_name", {"slug": "hello->ask_name"}),
        ("bulk", url("move_state") + "?slug=hello->ask_name", {"slug": "hello->ask_name"}),
    ]


@pytest.mark.parametrize(
    "perms, allowed",
    [
        ((), set()),
        (("view_session",), {"view"}),
        (("change_session",), {"view", "change"}),
        (("view_session", "change_session"), {"view", "change"}),
        (("bulk_change_session",), set()),  # bulk needs change too
        (("change_session", "bulk_change_session"), {"view", "change", "bulk"}),
    ],
)
def test_permission_matrix(people, perms, allowed):
    client = staff(*perms)
    for need, page, data in _pages():
        # What may be seen is fetched with GET; what changes, with POST.
        response = client.post(page, data) if data else client.get(page)
        if need in allowed:
            assert response.status_code in (200, 302), (perms, page)
            if need != "view":
                people.step_to("zoë", slug="hello->ask_name")  # restore for the next page
        else:
            assert response.status_code == 403, (perms, page, response.status_code)
    assert people.peek("zoë").slug == "hello->ask_name"


def test_anonymous_users_are_sent_to_the_login(people):
    for _, page, data in _pages():
        response = Client().post(page, data) if data else Client().get(page)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert people.peek("zoë") is not None


def test_staff_without_permission_do_not_see_sessions_on_the_index(people):
    assert f'href="{LIST}"' not in staff().get("/admin/").content.decode()


def test_every_post_needs_the_csrf_token(people):
    user = User.objects.create_superuser("csrf", "c@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for _, page, data in _pages():
        if data:
            assert client.post(page, data).status_code == 403, page
    assert people.peek("zoë").slug == "hello->ask_name"
    assert people.count_by_state()["hello->ask_name"] == 2


# -- Redis down -------------------------------------------------------------------------------


def test_redis_down_shows_an_error_page_and_the_rest_of_the_admin_works(admin_client, settings):
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "CACHE": "down"}
    for page in (LIST, url("dashboard"), change_url("u"), url("reset", "u")):
        response = admin_client.get(page)
        assert response.status_code == 503
        body = response.content.decode()
        assert "Redis is not answering" in body and 'id="site-name"' in body
    response = admin_client.post(url("reset", "u"))
    assert response.status_code == 503
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get("/admin/auth/user/").status_code == 200


def _rows(response) -> list[dict]:
    return [{"user_id": row.session.user_id} for row in response.context["rows"]]


def test_a_users_bare_url_leads_to_their_page(admin_client, people):
    response = admin_client.get(f"{LIST}{quote('a/b')}/")
    assert response.status_code == 302 and response["Location"] == change_url("a/b")


def test_a_malformed_state_filter_offers_no_bulk_action(admin_client, people):
    page = admin_client.get(LIST, {"slug": "garbage"}).content.decode()
    assert "Nothing to list" in page
    assert "everyone at" not in page


def test_expiry_reads_as_a_duration(admin_client, settings):
    settings.STEALTH_SESSIONS = {**settings.STEALTH_SESSIONS, "SESSION_TTL": 7 * 24 * 3600}
    get_session_service().step_to("u", slug="hello->say_hello")
    assert 'title="604800 s">1\xa0week</td>' in admin_client.get(LIST).content.decode()
    assert "1\xa0week (604800 s)" in admin_client.get(change_url("u")).content.decode()


# -- a busy user (another owner holds their lock) ---------------------------------------------


def test_the_change_page_says_the_user_is_busy_and_changes_nothing(admin_client, people):
    with people.lock("+4412", timeout=30):
        page = admin_client.get(change_url("+4412")).content.decode()
        assert 'id="ss-lock"' in page and "is busy" in page
        response = admin_client.post(
            change_url("+4412"),
            {"action": "move", "target": "goodbye->say_bye", "method": "step_to", "version": 2},
            follow=True,
        )
        assert "is busy" in response.content.decode()
        admin_client.post(url("reset", "+4412"), follow=True)
        admin_client.post(
            change_url("+4412"), {"action": "back_to", "target": "hello->say_hello", "version": 2}
        )
    session = people.peek("+4412")
    assert (session.slug, session.back_to, session.version) == ("hello->ask_name", None, 2)
    assert not LogEntry.objects.exists()
    assert "ss-lock" not in admin_client.get(change_url("+4412")).content.decode()


def test_the_change_page_shows_a_steps_data(admin_client, service):
    service.step_to_in("u1", 60, slug="follow_up->nudge", data={"target_id": "page-7"})
    page = admin_client.get(change_url("u1")).content.decode()
    assert "{&quot;target_id&quot;: &quot;page-7&quot;}" in page


def test_moving_a_user_to_the_state_they_are_in_changes_and_logs_nothing(admin_client, people):
    before = people.peek("zoë")
    response = admin_client.post(
        change_url("zoë"),
        {"action": "move", "target": "hello->ask_name", "method": "step_to", "version": 1},
        follow=True,
    )
    assert "Zoë is already at hello-&gt;ask_name: nothing changed." in response.content.decode()
    assert people.peek("zoë") == before
    assert len(people.history("zoë")) == 1
    assert not LogEntry.objects.exists()


def test_reset_selected_comes_back_to_the_filtered_list(admin_client, people):
    filters = "flow=hello&slug=hello-%3Eask_name&q=z"
    form = {"_selected_action": ["zoë"], "action": "reset_selected", "_changelist_filters": filters}
    confirm = admin_client.post(url("reset_selected"), form)
    page = confirm.content.decode()
    carried = "q=z&amp;flow=hello&amp;slug=hello-%3Eask_name"
    assert f'name="_changelist_filters" value="{carried}"' in page
    done = admin_client.post(url("reset_selected"), {**form, "post": "yes"})
    assert done["Location"] == LIST + "?q=z&flow=hello&slug=hello-%3Eask_name"
    assert people.peek("zoë") is None
    # only the list's own parameters are carried
    other = admin_client.post(
        url("reset_selected"), {**form, "_changelist_filters": "next=//evil&q=a", "post": "yes"}
    )
    assert other["Location"] == LIST + "?q=a"


def test_the_move_choices_say_where_a_redirecting_state_lands(admin_client, people):
    page = admin_client.get(change_url("zoë")).content.decode()
    assert (
        '<option value="hello-&gt;old_name">hello-&gt;old_name (redirects to goodbye-&gt;say_bye)'
        "</option>" in page
    )
    assert '<option value="hello-&gt;get_name">hello-&gt;get_name</option>' in page


def test_the_back_to_choice_is_blank_when_none_is_set(admin_client, people):
    response = admin_client.get(change_url("zoë"))
    back_form = response.context["back_form"]
    assert back_form["target"].value() == ""
    assert '<option value="" selected>---------</option>' in str(back_form["target"])
    people.set_back_to("zoë", slug="hello->say_hello")
    back_form = admin_client.get(change_url("zoë")).context["back_form"]
    assert back_form["target"].value() == "hello->say_hello"


def test_setting_the_back_to_it_already_has_logs_nothing(admin_client, people):
    people.set_back_to("zoë", slug="hello->say_hello")
    response = admin_client.post(
        change_url("zoë"),
        {"action": "back_to", "target": "hello->say_hello", "version": 2},
        follow=True,
    )
    assert "already hello-&gt;say_hello" in response.content.decode()
    assert not LogEntry.objects.exists()


# -- in another language --------------------------------------------------------------------


def test_every_admin_page_renders_in_french(admin_client, people, settings, in_request):
    """The catalogue stealth_sessions/locale/fr is complete: no English string of ours left
    on any page (slugs, user ids and Django's own strings aside)."""
    settings.LANGUAGE_CODE = "fr"
    people.step_to_in("zoë", 600, slug="goodbye->say_bye", if_unchanged=True)
    people.set_back_to("zoë", slug="hello->say_hello")
    pages = {
        "list": admin_client.get(LIST),
        "search": admin_client.get(LIST, {"q": "nobody"}),
        "state": admin_client.get(LIST, {"slug": "hello->ask_name"}),
        "dashboard": admin_client.get(url("dashboard")),
        "change": admin_client.get(change_url("zoë")),
        "no session": admin_client.get(change_url("nobody")),
        "reset": admin_client.get(url("reset", "zoë")),
        "reset state": admin_client.get(url("reset_state") + "?slug=hello-%3Eask_name"),
        "move state": admin_client.get(url("move_state") + "?slug=hello-%3Eask_name"),
        "reset selected": admin_client.post(
            url("reset_selected"), {"_selected_action": ["zoë", "a/b"], "action": "x"}
        ),
    }
    html = {name: response.content.decode() for name, response in pages.items()}
    assert all(response.status_code == 200 for response in pages.values()), html
    expected = {
        "list": ["Dernière activité", "Réinitialiser les sessions sélectionnées", "Par état",
                 "à l’instant", "3 sessions, activité la plus récente d’abord"],
        "search": ["Aucune session pour « nobody ».", "Effacer la recherche"],
        "state": ["Déplacer tous ceux à hello-&gt;ask_name", "Tout ("],  # Django's "All"
        "dashboard": ["3 sessions en tout.", "Utilisateurs par flux et par état"],
        "change": ["Déplacer vers un état", "Étapes planifiées en attente",
                   "Historique (le plus récent d’abord)", "seulement si toujours à",
                   "hello-&gt;old_name (redirige vers goodbye-&gt;say_bye)",
                   "update_session_to : déplacer seulement", "Session de retour"],
        "no session": ["nobody n’a pas de session."],
        "reset": ["Réinitialiser la session de <strong>zoë</strong> ?", "Oui, réinitialiser"],
        "reset state": ["Réinitialiser tous ceux à <strong>hello-&gt;ask_name</strong>"],
        "move state": ["Les déplacer vers", "Non, revenir"],
        "reset selected": ["Réinitialiser les sessions de ces", "Oui, réinitialiser 2"],
    }  # fmt: skip
    for name, phrases in expected.items():
        for phrase in phrases:
            assert phrase in html[name], (name, phrase)
    english = ["Last activity", "Reset selected", "By state", "just now", "Move to a state",
               "Pending scheduled steps", "No, take me back", "has no session", "in all",
               "latest activity first", "Clear the search", "Yes, reset", "redirects to",
               "Dashboard", "Admin log", "Expires in", "Chatbot sessions", "All ("]  # fmt: skip
    for name, page in html.items():
        for phrase in english:
            assert phrase not in page, (name, phrase)
