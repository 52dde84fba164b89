"""SessionAdmin: admin views over the sessions in Redis, in the admin's own look.

A thin adapter over the session service: every read is a non-sliding one (``peek``,
``browse``), every change a service call made inside ``origin("admin")``, so it lands in the
session's history, sends the usual signals, and is also written to Django's admin log.
Permissions are the model's: ``view_session`` to browse, ``change_session`` to move and reset
one user, and ``bulk_change_session`` in addition for the bulk actions. Destructive actions
confirm on GET and act on POST only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, re_path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import RedirectView

from .. import locking, metrics
from ..context import origin
from ..exceptions import (
    BulkOperationFailed,
    InvalidCursor,
    InvalidSlug,
    InvalidUserId,
    SessionConflict,
    SessionLocked,
    SessionStoreUnavailable,
    StealthSessionsError,
)
from ..jobs import MOVE, RESET, STOPPED
from ..models import Session as SessionObject
from ..service import SessionService, get_session_service, validate_user_id
from ..slugs import parse
from ..values import BulkOutcome
from .forms import BackToForm, MoveForm, MoveStateForm

TEMPLATES = "stealth_sessions/admin/"
LOG_BATCH = 1000
# The list's filters, carried through "Reset selected" and back (the admin's own name for it).
FILTERS = "_changelist_filters"
LIST_PARAMS = ("q", "flow", "slug")
# "Previous page": the cursors of the pages before this one, newest last, in the URL (cursors
# are forward-only); beyond this many, only "First page" leads back.
MAX_PREVIOUS = 30

logger = logging.getLogger("stealth_sessions.admin")


def redis_errors_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Redis down: the admin's look and a 503 with what happened, not a 500 traceback. The
    rest of the admin, which needs no Redis, keeps working."""

    @functools.wraps(view)
    def wrapper(self: SessionAdmin, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return view(self, request, *args, **kwargs)
        except SessionStoreUnavailable as exc:
            logger.error(
                "Answered %s %s with a 503: %s", request.method, request.path, exc, exc_info=exc
            )
            metrics.store_unavailable("admin")
            context = {
                **self._context(request, _("Sessions are unavailable")),
                "error": str(exc),
            }
            return TemplateResponse(request, TEMPLATES + "unavailable.html", context, status=503)

    return wrapper


class SessionAdmin(admin.ModelAdmin):
    list_per_page = 100
    # Without a task engine, "reset/move everyone at a state" runs inside the request (about
    # 3,500 users a second) only up to this many users.
    bulk_in_request_limit = 10_000

    # -- permissions --------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a session starts with a move (the detail page of a new user id)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "reset", under change_session

    def has_bulk_permission(self, request: HttpRequest) -> bool:
        perm = f"{self.opts.app_label}.bulk_change_session"
        return self.has_change_permission(request) and request.user.has_perm(perm)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        """The model instance standing for a user id (no database row): for the history view."""
        try:
            return SessionObject(user_id=validate_user_id(object_id))
        except InvalidUserId:
            return None

    @property
    def service(self) -> SessionService:
        return get_session_service()

    # -- URLs ---------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view

        name = f"{self.opts.app_label}_{self.opts.model_name}_%s"
        # Object ids are quote()d as everywhere in the admin ("/" -> "_2F"), and a user's
        # routes have two segments (<id>/change/): the fixed ones, one segment, never collide.
        return [
            path("", wrap(self.changelist_view), name=name % "changelist"),
            path("dashboard/", wrap(self.dashboard_view), name=name % "dashboard"),
            path("reset-selected/", wrap(self.reset_selected_view), name=name % "reset_selected"),
            path("reset-state/", wrap(self.reset_state_view), name=name % "reset_state"),
            path("move-state/", wrap(self.move_state_view), name=name % "move_state"),
            # Before the users' routes; a job id is 32 hex digits, and a quoted user id's
            # routes never have a slash inside.
            re_path(
                r"^bulk-job/(?P<job_id>[0-9a-f]{32})/$",
                wrap(self.bulk_job_view),
                name=name % "bulk_job",
            ),
            path("<path:object_id>/history/", wrap(self.history_view), name=name % "history"),
            path("<path:object_id>/reset/", wrap(self.reset_view), name=name % "reset"),
            path("<path:object_id>/change/", wrap(self.change_view), name=name % "change"),
            # As the admin does for every model: an object's bare URL leads to its page.
            path(
                "<path:object_id>/",
                wrap(
                    RedirectView.as_view(pattern_name=f"{self.admin_site.name}:{name % 'change'}")
                ),
            ),
        ]

    def _url(self, what: str, *args: str, **query: str) -> str:
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{what}",
            args=[quote(a) for a in args],
        )
        return f"{url}?{urlencode(query)}" if query else url

    # -- the list -----------------------------------------------------------------------

    @redis_errors_page
    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        q = request.GET.get("q", "").strip()
        flow = request.GET.get("flow") or None
        slug = request.GET.get("slug") or None
        cursor = request.GET.get("cursor") or None
        # The cursors of the pages before this one ("" for the first page), oldest first.
        trail = request.GET.get("prev")
        previous = [] if trail is None else trail.split(",")[-MAX_PREVIOUS:]
        counts = self.service.count_by_state()
        rows: Sequence[Any] = ()
        next_cursor = None
        try:
            rows, next_cursor = self.service.browse(
                flow=flow,
                slug=slug,
                # Anywhere in the id: "+447700900015" finds "whatsapp:+447700900015".
                user_id_contains=q or None,
                cursor=cursor,
                limit=self.list_per_page,
            )
        except (InvalidSlug, InvalidUserId, InvalidCursor) as exc:
            messages.error(request, _("Nothing to list: %(error)s") % {"error": exc})
            if isinstance(exc, InvalidSlug):
                slug = None  # no bulk action on a slug that cannot be one
        flows = _flow_counts(counts)
        if slug:
            total = counts.get(slug, 0)
        elif flow:
            total = flows.get(flow, {}).get("total", 0)
        else:
            total = sum(counts.values())
        query = {k: v for k, v in (("q", q), ("flow", flow), ("slug", slug)) if v}

        def link(**change: str | None) -> str:
            return "?" + urlencode({k: v for k, v in {**query, **change}.items() if v})

        flow_links = [
            {"label": _("All"), "count": sum(counts.values()), "url": link(flow=None, slug=None),
             "selected": not flow and not slug},
            *({"label": name, "count": entry["total"], "url": link(flow=name, slug=None),
               "selected": flow == name and not slug} for name, entry in flows.items()),
        ]  # fmt: skip
        state_links = [
            {"label": s["slug"], "count": s["count"], "url": link(slug=s["slug"]),
             "selected": slug == s["slug"]}
            for entry in flows.values() for s in entry["states"]
            if not flow or s["slug"].startswith(flow + "->")
        ]  # fmt: skip
        next_url = None
        if next_cursor:
            trail = ",".join([*previous, cursor or ""])  # how to come back here
            next_url = "?" + urlencode({**query, "cursor": next_cursor, "prev": trail})
        previous_url = None  # also deeper than MAX_PREVIOUS pages: "First page" only
        if cursor and previous:
            back, before = previous[-1], previous[:-1]  # back "": the first page
            previous_url = "?" + urlencode(
                {**query, **({"cursor": back} if back else {}),
                 **({"prev": ",".join(before)} if before else {})}
            )  # fmt: skip
        context = {
            **self._context(request, _("Sessions")),
            "rows": rows,
            "q": q,
            "exact": bool(q and rows and rows[0].session.user_id == q),
            "flow": flow,
            "slug": slug,
            "total": total,
            "flow_links": flow_links,
            "state_links": state_links,
            "reset_selected_url": self._url("reset_selected"),
            "reset_state_url": self._url("reset_state", slug=slug) if slug else None,
            "move_state_url": self._url("move_state", slug=slug) if slug else None,
            "next_url": next_url,
            "previous_url": previous_url,
            "first_url": "?" + urlencode(query) if cursor else None,
            "clear_search_url": link(q=None) if q else None,
            "filters": urlencode(query),
            "filters_name": FILTERS,
            "has_bulk_permission": self.has_bulk_permission(request),
            "has_change_permission": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, TEMPLATES + "change_list.html", context)

    @redis_errors_page
    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        counts = self.service.count_by_state()
        flow_map = self.service.flow_map
        flows = []
        for flow, entry in _flow_counts(counts, flow_map).items():
            states = [
                {**s, "known": flow_map is None or s["slug"] in flow_map} for s in entry["states"]
            ]
            flows.append({"name": flow, "total": entry["total"], "states": states})
        peak = max((s["count"] for f in flows for s in f["states"]), default=0) or 1
        for f in flows:
            for s in f["states"]:
                s["percent"] = round(100 * s["count"] / peak, 1)
        context = {
            **self._context(request, _("Users per flow and state")),
            "flows": flows,
            "total": sum(counts.values()),
        }
        return TemplateResponse(request, TEMPLATES + "dashboard.html", context)

    # -- one user -----------------------------------------------------------------------

    @redis_errors_page
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        user_id = self._user_id(object_id)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        service, flow_map = self.service, self.service.flow_map
        session = service.peek(user_id)
        version = 0 if session is None else session.version
        # Two forms on one page: their own id prefixes, so each label points at its field.
        move_kw: dict[str, Any] = {"flow_map": flow_map, "auto_id": "id_move_%s"}
        back_kw: dict[str, Any] = {"flow_map": flow_map, "auto_id": "id_back_to_%s"}
        move_form = MoveForm(initial={"version": version}, **move_kw)
        back_form = BackToForm(initial={"version": version}, **back_kw)
        if session is not None:
            move_form.initial["target"] = session.slug
            # None set: nothing preselected (the blank choice), not the current state.
            back_form.initial["target"] = session.back_to or ""
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            action = request.POST.get("action")
            if action == "move":
                move_form = MoveForm(request.POST, **move_kw)
                if self._move(request, user_id, move_form):
                    return HttpResponseRedirect(request.path)
            elif action == "back_to":
                back_form = BackToForm(request.POST, **back_kw)
                if self._set_back_to(request, user_id, back_form):
                    return HttpResponseRedirect(request.path)
            elif action == "cancel_step":
                self._cancel_step(request, user_id, request.POST.get("step_id", ""))
                return HttpResponseRedirect(request.path)
            else:
                messages.error(request, _("Unknown action %(action)r") % {"action": action})
                return HttpResponseRedirect(request.path)
        context = {
            **self._context(request, user_id),
            "user_id": user_id,
            "session": session,
            "history": service.history(user_id),
            "steps": service.scheduled_steps(user_id),
            "outcomes": service.scheduled_step_outcomes(user_id, limit=10),
            "lock": service.current_lock(user_id),
            "move_form": move_form,
            "back_form": back_form,
            "has_change_permission": self.has_change_permission(request),
            "reset_url": self._url("reset", user_id),
            "history_url": self._url("history", user_id),
            **(extra_context or {}),
        }
        return TemplateResponse(request, TEMPLATES + "change_form.html", context)

    def _move(self, request: HttpRequest, user_id: str, form: MoveForm) -> bool:
        def write(data: dict[str, Any]) -> tuple[str, str] | str:
            method, target = data["method"], data["target"]
            current = self.service.peek(user_id)
            if current and current.version == data["version"] and current.slug == target:
                # Already there: nothing written, nothing logged (a step_to would rerun the
                # state's action, which a support person picking the same state never means).
                return _("%(user_id)s is already at %(slug)s: nothing changed.") % {
                    "user_id": user_id,
                    "slug": target,
                }
            move = self.service.step_to if method == "step_to" else self.service.update_session_to
            slug = move(user_id, slug=target, expected_version=data["version"]).slug
            return f"{method} to {slug}", _("Moved %(user_id)s to %(slug)s (%(method)s).") % {
                "user_id": user_id,
                "slug": slug,
                "method": method,
            }

        return self._change_one(request, user_id, form, write)

    def _set_back_to(self, request: HttpRequest, user_id: str, form: BackToForm) -> bool:
        def write(data: dict[str, Any]) -> tuple[str, str] | str:
            target = data["target"]
            current = self.service.peek(user_id)
            if current and current.version == data["version"] and current.back_to == target:
                return _("The back-to session of %(user_id)s is already %(slug)s.") % {
                    "user_id": user_id,
                    "slug": target,
                }
            self.service.set_back_to(user_id, slug=target, expected_version=data["version"])
            return f"set_back_to {target}", _(
                "The back-to session of %(user_id)s is now %(slug)s."
            ) % {"user_id": user_id, "slug": target}

        return self._change_one(request, user_id, form, write)

    def _change_one(
        self,
        request: HttpRequest,
        user_id: str,
        form: forms.Form,
        write: Callable[[dict[str, Any]], tuple[str, str] | str],
    ) -> bool:
        """Apply a valid form with ``write`` (returning the admin log's message and the
        user's, or only the user's when there was nothing to change). True: redirect (done,
        or refused because the user changed meanwhile); False: show the form again with its
        errors."""
        if not form.is_valid():
            return False
        try:
            with origin("admin"), locking.no_owner():
                written = write(form.cleaned_data)
        except SessionConflict as exc:
            messages.error(request, _conflict(exc))
            return True
        except SessionLocked as exc:
            messages.error(request, busy(user_id, exc))
            return True
        except StealthSessionsError as exc:
            form.add_error("target", str(exc))
            return False
        if isinstance(written, str):
            messages.info(request, written)  # a no-op: no admin log entry either
            return True
        log, message = written
        self._log(request, [user_id], CHANGE, log)
        messages.success(request, message)
        return True

    def _cancel_step(self, request: HttpRequest, user_id: str, step_id: str) -> None:
        try:
            with origin("admin"):
                cancelled = self.service.cancel_scheduled(user_id, step_id)
        except StealthSessionsError as exc:
            messages.error(request, str(exc))
            return
        if cancelled:
            self._log(request, [user_id], CHANGE, f"cancelled scheduled step {step_id}")
            messages.success(request, _("Scheduled step cancelled."))
        else:
            messages.warning(request, _("That step was no longer pending (applied or cancelled)."))

    @redis_errors_page
    def reset_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        user_id = self._user_id(object_id)
        if not self.has_change_permission(request):
            raise PermissionDenied
        session = self.service.peek(user_id)
        if request.method == "POST":
            try:
                with origin("admin"), locking.no_owner():
                    existed = self.service.reset(user_id)
            except SessionLocked as exc:
                messages.error(request, busy(user_id, exc))
                return HttpResponseRedirect(self._url("change", user_id))
            if existed:
                self._log(request, [user_id], DELETION, "reset")
                messages.success(
                    request, _("The session of %(user_id)s was reset.") % {"user_id": user_id}
                )
            else:
                messages.warning(
                    request, _("%(user_id)s had no session (any more).") % {"user_id": user_id}
                )
            return HttpResponseRedirect(self._url("changelist"))
        context = {
            **self._context(request, _("Reset %(user_id)s?") % {"user_id": user_id}),
            "user_id": user_id,
            "session": session,
            "steps": self.service.scheduled_steps(user_id),
            "change_url": self._url("change", user_id),
        }
        return TemplateResponse(request, TEMPLATES + "reset_confirmation.html", context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        self._user_id(object_id)
        return super().history_view(request, object_id, extra_context)

    # -- bulk actions -------------------------------------------------------------------

    @redis_errors_page
    def reset_selected_view(self, request: HttpRequest) -> HttpResponse:
        """From the list's checkboxes: confirm, then reset the selected users."""
        if not self.has_bulk_permission(request):
            raise PermissionDenied
        # Back to the list as it was filtered (search, flow, state), not to everyone.
        filters = _list_filters(request.POST.get(FILTERS, ""))
        back = self._url("changelist") + (f"?{filters}" if filters else "")
        if request.method != "POST":
            return HttpResponseRedirect(self._url("changelist"))
        user_ids = request.POST.getlist(ACTION_CHECKBOX_NAME)
        if not user_ids:
            messages.warning(request, _("Select the sessions to reset first."))
            return HttpResponseRedirect(back)
        try:
            if request.POST.get("post") == "yes":
                self._bulk(
                    request,
                    lambda: self.service.reset_many(user_ids),
                    lambda n: ngettext("Reset %(n)d session", "Reset %(n)d sessions", n) % {"n": n},
                    DELETION,
                    "reset",
                )
                return HttpResponseRedirect(back)
            for user_id in user_ids:
                validate_user_id(user_id)
        except InvalidUserId as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
        context = {
            **self._context(request, _("Reset the selected sessions?")),
            "user_ids": user_ids,
            "count": len(user_ids),
            "checkbox_name": ACTION_CHECKBOX_NAME,
            "filters": filters,
            "filters_name": FILTERS,
            "back_url": back,
        }
        return TemplateResponse(request, TEMPLATES + "reset_selected_confirmation.html", context)

    @redis_errors_page
    def reset_state_view(self, request: HttpRequest) -> HttpResponse:
        """Everyone at one state: confirm (GET, with the count), then reset (POST)."""
        slug = self._bulk_slug(request)
        if request.method == "POST":
            if self.service.jobs.available:
                return self._start_job(request, RESET, slug)
            if self._too_many(request, slug):
                return HttpResponseRedirect(self._url("changelist", slug=slug))
            self._bulk(
                request,
                lambda: self.service.reset_state(slug),
                lambda n: (
                    ngettext(
                        "Reset %(n)d session at %(slug)s", "Reset %(n)d sessions at %(slug)s", n
                    )
                    % {"n": n, "slug": slug}
                ),
                DELETION,
                "reset",
            )
            return HttpResponseRedirect(self._url("changelist"))
        context = {
            **self._context(request, _("Reset everyone at %(slug)s?") % {"slug": slug}),
            "slug": slug,
            "count": self.service.count_by_state().get(slug, 0),
        }
        return TemplateResponse(request, TEMPLATES + "reset_state_confirmation.html", context)

    @redis_errors_page
    def move_state_view(self, request: HttpRequest) -> HttpResponse:
        """Everyone at one state (renamed, say) to another: choose and confirm, then move
        (in the background when a task engine is configured)."""
        slug = self._bulk_slug(request)
        form = MoveStateForm(
            request.POST if request.method == "POST" else None, flow_map=self.service.flow_map
        )
        if request.method == "POST" and form.is_valid():
            target, run_action = form.cleaned_data["target"], form.cleaned_data["run_action"]
            method = "step_to" if run_action else "update_session_to"
            try:
                if self.service.jobs.available:
                    return self._start_job(request, MOVE, slug, target, run_action)
                if self._too_many(request, slug):
                    return HttpResponseRedirect(self._url("changelist", slug=slug))
                self._bulk(
                    request,
                    lambda: self.service.move_state(slug, target, run_action=run_action),
                    lambda n: (
                        ngettext(
                            "Moved %(n)d session from %(slug)s to %(target)s",
                            "Moved %(n)d sessions from %(slug)s to %(target)s",
                            n,
                        )
                        % {"n": n, "slug": slug, "target": target}
                    ),
                    CHANGE,
                    f"{method} to {target} (moved everyone at {slug})",
                )
            except StealthSessionsError as exc:  # refused before any user was moved
                form.add_error("target", str(exc))
            else:
                return HttpResponseRedirect(self._url("changelist", slug=target))
        context = {
            **self._context(request, _("Move everyone at %(slug)s") % {"slug": slug}),
            "slug": slug,
            "count": self.service.count_by_state().get(slug, 0),
            "form": form,
            "in_background": self.service.jobs.available,
        }
        return TemplateResponse(request, TEMPLATES + "move_state.html", context)

    def _too_many(self, request: HttpRequest, slug: str) -> bool:
        """Without a task engine: refuse, with a message, a state too large for a request."""
        count = self.service.count_by_state().get(slug, 0)
        if count <= self.bulk_in_request_limit:
            return False
        messages.error(
            request,
            _(
                "%(count)d users are at %(slug)s: too many to change in one web request (at "
                "most %(limit)d). Configure a task engine (STEALTH_SESSIONS['SCHEDULER'], RQ "
                "by default, with a worker running) to change them in the background, or use "
                "the service's reset_state()/move_state() from a shell."
            )
            % {"count": count, "slug": slug, "limit": self.bulk_in_request_limit},
        )
        return True

    def _start_job(
        self,
        request: HttpRequest,
        kind: str,
        slug: str,
        target: str | None = None,
        run_action: bool = False,
    ) -> HttpResponse:
        job = self.service.jobs.start(
            kind, slug, target, run_action=run_action, started_by=request.user.get_username()
        )
        messages.success(
            request,
            _("Started in the background: %(total)d user(s) at %(slug)s.")
            % {"total": job.total, "slug": slug},
        )
        return HttpResponseRedirect(self._url("bulk_job", job.id))

    @redis_errors_page
    def bulk_job_view(self, request: HttpRequest, job_id: str) -> HttpResponse:
        """A background bulk change: its progress (refreshed while it runs), cancel, resume."""
        if not self.has_bulk_permission(request):
            raise PermissionDenied
        jobs = self.service.jobs
        job = jobs.get(job_id)
        if job is None:
            raise Http404(_("No such bulk job (finished jobs are kept for 7 days)"))
        if request.method == "POST":
            action = request.POST.get("action")
            if action == "cancel" and jobs.cancel(job_id):
                messages.success(request, _("Cancelling: the job stops before its next batch."))
            elif action == "resume" and job.stale and jobs.resume(job_id):
                messages.success(request, _("Resumed from its last saved batch."))
            else:
                messages.warning(
                    request,
                    _("Nothing to %(action)s: the job is %(status)s.")
                    % {"action": action, "status": job.status},
                )
            return HttpResponseRedirect(request.path)
        what = (
            _("Reset everyone at %(slug)s") % {"slug": job.slug}
            if job.kind == RESET
            else _("Move everyone at %(slug)s to %(target)s")
            % {"slug": job.slug, "target": job.target}
        )
        context = {
            **self._context(request, what),
            "job": job,
            "percent": 100 if not job.total else min(100, round(100 * job.processed / job.total)),
            # Also while stale: the sweep hands a job whose worker died to another one.
            "refresh": not job.finished and job.status != STOPPED,
        }
        return TemplateResponse(request, TEMPLATES + "bulk_job.html", context)

    def _bulk_slug(self, request: HttpRequest) -> str:
        if not self.has_bulk_permission(request):
            raise PermissionDenied
        slug = (request.POST if request.method == "POST" else request.GET).get("slug", "")
        try:
            parse(slug)
        except InvalidSlug as exc:
            raise Http404(str(exc)) from None
        return slug

    def _bulk(
        self,
        request: HttpRequest,
        run: Callable[[], BulkOutcome],
        done: Callable[[int], str],
        flag: int,
        log: str,
    ) -> None:
        """Run a bulk operation as the admin, log each user it changed and report. One that
        stops part-way (a bot action raised, Redis went away) is reported as such, with the
        users it did change logged; refusals before any change propagate."""
        try:
            with origin("admin"):
                outcome = run()
        except BulkOperationFailed as exc:
            partial: BulkOutcome = exc.outcome  # type: ignore[assignment]
            self._log(request, partial.user_ids, flag, log)
            n, cause = partial.changed, exc.__cause__
            messages.error(
                request,
                _(
                    "%(done)s, then stopped at %(user_id)s: %(error)s. The users after it "
                    "were left as they were."
                )
                % {
                    "done": done(n),
                    "user_id": exc.user_id,
                    "error": f"{type(cause).__name__}: {cause}",
                },
            )
            return
        self._log(request, outcome.user_ids, flag, log)
        n = outcome.changed
        message = done(n) + "."
        if outcome.skipped:
            message += " " + _("%(skipped)d skipped: moved, reset or gone meanwhile.") % {
                "skipped": outcome.skipped
            }
        messages.success(request, message)

    # -- helpers ------------------------------------------------------------------------

    def _user_id(self, object_id: str) -> str:
        try:
            return validate_user_id(unquote(object_id))
        except InvalidUserId as exc:
            raise Http404(str(exc)) from None

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "changelist_url": self._url("changelist"),
            "dashboard_url": self._url("dashboard"),
        }

    def _log(self, request: HttpRequest, user_ids: Iterable[str], flag: int, message: str) -> None:
        """Django's admin log, one entry per user (each object's history page shows it)."""
        ids = list(user_ids)
        user = request.user.pk
        assert user is not None  # admin_view lets only logged-in staff in
        for i in range(0, len(ids), LOG_BATCH):
            LogEntry.objects.log_actions(
                user_id=user,
                queryset=[SessionObject(user_id=u) for u in ids[i : i + LOG_BATCH]],
                action_flag=flag,
                change_message=message,
            )


def busy(user_id: str, exc: SessionLocked) -> str:
    lock = exc.lock
    if lock is None:
        return _(
            "Not changed: %(user_id)s is busy: a worker holds their session lock, handling "
            "their message. Try again in a moment."
        ) % {"user_id": user_id}
    return _(
        "Not changed: %(user_id)s is busy: a worker holds their session lock (until "
        "%(until)s UTC at the latest), handling their message. Try again in a moment."
    ) % {"user_id": user_id, "until": f"{lock.until:%H:%M:%S}"}


def _conflict(exc: SessionConflict) -> str:
    return _(
        "Not changed: the session of %(user_id)s changed meanwhile (now version %(version)s). "
        "Here it is as it is now."
    ) % {"user_id": exc.user_id, "version": exc.actual}


def _list_filters(raw: str) -> str:
    """The list's own parameters from a ``_changelist_filters`` value, re-encoded: nothing
    else from a posted form reaches a redirect."""
    given = QueryDict(raw)
    return urlencode([(k, given[k]) for k in LIST_PARAMS if given.get(k)])


def _flow_counts(counts: dict[str, int], flow_map: Any = None) -> dict[str, dict[str, Any]]:
    """``{flow: {"total": n, "states": [{"slug", "state", "count"}]}}``: the flow map's flows
    and states in their declared order (with zeros), then any other slug found in Redis."""
    flows: dict[str, dict[str, Any]] = {}
    if flow_map is not None:
        for flow in flow_map.flows():
            flows[flow] = {"total": 0, "states": []}
            for state in flow_map.states(flow):
                slug = f"{flow}->{state}"
                n = counts.get(slug, 0)
                flows[flow]["total"] += n
                flows[flow]["states"].append({"slug": slug, "state": state, "count": n})
    known = {s["slug"] for f in flows.values() for s in f["states"]}
    for slug, n in sorted(counts.items()):
        if slug in known:
            continue
        try:
            flow, state = parse(slug)
        except InvalidSlug:
            flow, state = "(malformed)", slug
        entry = flows.setdefault(flow, {"total": 0, "states": []})
        entry["total"] += n
        entry["states"].append({"slug": slug, "state": state, "count": n})
    return flows
