"""The session admin's pages with 1,000,000 sessions loaded: server time of each.

Target (issue): with 1,000,000 sessions loaded, the list page, each filter, the counts and the
detail page each render in under 200 ms of server time.

Server time is the time of Django's test Client's ``get()``, in process: URL resolving, the
middleware (session, auth, CSRF, messages), the view with its Redis calls, and the template
rendering; no HTTP server, no network. DEBUG off, a superuser (force_login), an in-memory
SQLite database migrated at start. Each page is fetched once first (templates compiled, the
response checked: 200 and rows, so a broken page cannot look fast), then in 21 rounds, each
round fetching every page once (a noisy neighbour slows all alike); the median is printed.

Baseline, from the same rounds: Django's own admin changelist of auth.User with 100 users
(root and 99 others: one page of 100 rows), a bare Django admin page; each page's ratio to
it is printed.

The users are spread over six slugs (benchmarks/_setup.py LOAD_SLUGS: a third in the flow
"order", a sixth at "order->confirm"). "A later page" is page 10 of the unfiltered list,
reached by following the page's next_url (an opaque cursor) from the first page: a page
seeks its cursor in the indexes, so its cost does not depend on how deep it is. The detail
page is that of one user with a full history (HISTORY_LENGTH, 50 transitions) and a pending
scheduled step (RQ through django-rq, on the same redis-server; no worker runs).
Environment: BENCH_SESSIONS (1,000,000).
"""

from __future__ import annotations

import functools
import os
import statistics
from collections.abc import Callable
from typing import Any

from ._setup import FLOW_MAP, LOAD_SLUGS, elapsed_ms, load_sessions, start_django

MILLION = int(os.environ.get("BENCH_SESSIONS", "1000000"))
ROUNDS = 21
TARGET_MS = 200.0
DETAIL = f"user-{min(424242, MILLION - 1):08d}"  # also the exact id searched for
PREFIX = DETAIL[:9]  # "user-0042": 10,000 users at a million
LATER_PAGE = 10
BASELINE_USERS = 100


def __getattr__(name: str) -> Any:
    """The URLconf (ROOT_URLCONF is this module), built on first access, after setup."""
    if name == "urlpatterns":
        from django.contrib import admin
        from django.urls import path

        return [path("admin/", admin.site.urls)]
    raise AttributeError(name)


def main() -> None:
    server = start_django(urlconf=__name__, FLOW_MAP=FLOW_MAP)
    from django.contrib.admin.utils import quote
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from stealth_sessions.service import get_session_service

    call_command("migrate", verbosity=0)
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    User.objects.bulk_create(User(username=f"staff-{i:03d}") for i in range(BASELINE_USERS - 1))
    client = Client()
    client.force_login(root)

    service = get_session_service()
    print(f"Loading {MILLION:,} sessions ...", flush=True)
    print(f"loaded in {elapsed_ms(lambda: load_sessions(service, MILLION)) / 1000:.0f} s")
    history_length = service.history_length
    for i in range(history_length):
        service.step_to(DETAIL, slug=LOAD_SLUGS[i % len(LOAD_SLUGS)])
    service.step_to_in(DETAIL, 3600, slug="follow_up->nudge")
    total = sum(service.count_by_state().values())
    assert total == MILLION, total

    def url(name: str, *args: str, query: str = "") -> str:
        path = reverse(f"admin:stealth_sessions_session_{name}", args=[quote(a) for a in args])
        return path + query

    def get(page: str) -> Any:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        return response

    def rows(count: int | None = None, exact: bool = False) -> Callable[[Any], None]:
        """A check of a list page: ``count`` rows (None: at least one) in context and HTML;
        ``exact``: the search found its exact match."""

        def check(response: Any) -> None:
            found = response.context_data["rows"]
            assert found if count is None else len(found) == count, (count, len(found))
            assert response.context_data["exact"] == exact
            assert b'id="result_list"' in response.content
            assert quote(found[0].session.user_id).encode() in response.content

        return check

    def dashboard(response: Any) -> None:
        assert response.context_data["total"] == total
        assert sum(f["total"] for f in response.context_data["flows"]) == total
        assert b"?slug=order-%3Econfirm" in response.content

    def detail(response: Any) -> None:
        context = response.context_data
        assert context["session"] is not None and context["session"].user_id == DETAIL
        assert len(context["history"]) == history_length, len(context["history"])
        assert len(context["steps"]) == 1, context["steps"]
        assert b"follow_up-&gt;nudge" in response.content

    def baseline(response: Any) -> None:
        assert len(response.context_data["cl"].result_list) == BASELINE_USERS
        assert b'id="result_list"' in response.content and b"staff-098" in response.content

    # response.context_data: the TemplateResponse's own context. response.context would need
    # django.test.utils.setup_test_environment(), whose instrumented rendering (a signal and
    # a copy of the context per template) would be timed too.
    changelist = url("changelist")
    later = changelist
    for _ in range(LATER_PAGE - 1):
        later = changelist + get(later).context_data["next_url"]

    per_page = 100
    pages: list[tuple[str, str, Callable[[Any], None]]] = [
        (f"baseline: auth.User changelist ({BASELINE_USERS} rows)",
         reverse("admin:auth_user_changelist"), baseline),
        ("list (100 rows a page)", changelist, rows(per_page)),
        ("list ?flow=order", url("changelist", query="?flow=order"), rows(per_page)),
        ("list ?slug=order->confirm",
         url("changelist", query="?slug=order-%3Econfirm"), rows(per_page)),
        (f"list, page {LATER_PAGE} (next_url followed)", later, rows(per_page)),
        (f"search ?q={PREFIX} (prefix)",
         url("changelist", query=f"?q={PREFIX}"), rows(per_page)),
        (f"search ?q={DETAIL} (exact id)",
         url("changelist", query=f"?q={DETAIL}"), rows(1, exact=True)),
        (f"search ?q={PREFIX}&slug=order->confirm",
         url("changelist", query=f"?q={PREFIX}&slug=order-%3Econfirm"), rows()),
        ("dashboard (the counts)", url("dashboard"), dashboard),
        (f"detail: change page of {DETAIL}", url("change", DETAIL), detail),
    ]  # fmt: skip
    for _, page, check in pages:
        check(get(page))  # warm up, and the page is what it should be

    times: dict[str, list[float]] = {label: [] for label, _, _ in pages}
    for _ in range(ROUNDS):
        for label, page, _ in pages:
            times[label].append(elapsed_ms(functools.partial(get, page)))

    medians = {label: statistics.median(t) for label, t in times.items()}
    base = medians[pages[0][0]]
    print(
        f"\nServer time (in-process test Client, DEBUG off), median of {ROUNDS} interleaved "
        f"rounds, {total:,} sessions; target: under {TARGET_MS:.0f} ms\n"
    )
    for n, (label, _, _) in enumerate(pages):
        ms = medians[label]
        verdict = "baseline" if n == 0 else "ok" if ms < TARGET_MS else "OVER TARGET"
        quartiles = sorted(times[label])
        spread = f"{quartiles[ROUNDS // 4]:.1f}..{quartiles[3 * ROUNDS // 4]:.1f}"
        print(
            f"{label:<48} {ms:>7.1f} ms  (quartiles {spread:>13})  "
            f"{ms / base:>5.2f}x baseline  {verdict}",
            flush=True,
        )
    server.stop()
