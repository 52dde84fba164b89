"""The viewsets: thin adapters over :func:`~stealth_sessions.service.get_session_service`.

Each action validates its input with a serializer, makes one service call, and shapes the
result; errors travel as exceptions to :func:`.errors.exception_handler`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.http import HttpResponse, HttpResponseBase
from django.http.request import RawPostDataException
from django.templatetags.static import static
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector
from rest_framework.throttling import BaseThrottle
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from .. import locking
from ..service import SessionService, get_session_service, origin
from ..slugs import parse
from ..values import ScheduledStep, Session
from . import serializers as s
from .conf import api_settings
from .errors import BadRequest, NotFound, SchedulingDisabled, exception_handler
from .idempotency import idempotent

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass  # a stub-only alias

_S = TypeVar("_S", bound=s.StrictSerializer)
ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Any])

# "<digits>" exactly: versions are compared strongly, so weak (W/) tags never match.
_IF_MATCH = re.compile(r'\s*"(\d{1,18})"\s*\Z')


# -- schema helpers ---------------------------------------------------------------------------

_ERROR_TEXT = {
    400: "Invalid input (code says which)",
    401: "No or bad credentials",
    403: "Lacks the permission",
    404: "No session (or no such scheduled step)",
    409: "Conflict: no back-to session, a concurrent write, an Idempotency-Key in use",
    412: "If-Match is stale: the session moved on",
    422: "Idempotency-Key reused with a different request",
    429: "Throttled",
    501: "Scheduled steps are disabled (STEALTH_SESSIONS['SCHEDULER'] is None)",
    503: "Redis unavailable; see Retry-After",
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {
        c: OpenApiResponse(s.ErrorSerializer, _ERROR_TEXT[c])
        for c in (400, 401, 403, 429, 503, *codes)
    }


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description='"<version>" (the ETag): write only if the session is at that version, else 412.',
    pattern=r'^"\d{1,18}"$',
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any unique string (1-255 printable ASCII): a retry with the same key returns "
    "the first result instead of acting twice.",
)
USER_ID = OpenApiParameter(
    "user_id",
    str,
    OpenApiParameter.PATH,
    description="The bot's user id, URL-encoded (any character but '/').",
    pattern=r"^[^/]+$",
)


class ServiceSchema(AutoSchema):
    """drf-spectacular's AutoSchema, minus its guess that a ``list`` action returns an array:
    ours return objects (a page, the flow map); only ``many=True`` serializers are arrays."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        if serializer is None:
            serializer = self.get_response_serializers()
        if isinstance(serializer, dict) and serializer:
            serializer = serializer[min(serializer, key=str)]
        return is_list_serializer(serializer)


class JSONNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering the usual case (no query string, Accept absent, ``*/*`` or
    ``application/json``, one JSON renderer) without parsing the query string and the Accept
    header, with the answer DRF would give: a quarter of a GET's Python time otherwise."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        meta = request.META
        if (
            not format_suffix
            and len(renderers) == 1
            and renderers[0].media_type == "application/json"
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json")
        ):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)


class RenderedResponse(HttpResponse):
    """``Response(data)`` rendered at once by DRF's JSONRenderer, ``data`` kept (idempotency
    records read it, as tests may). See ``ServiceAPIMixin.respond``."""

    def __init__(
        self,
        data: Any,
        content: bytes,
        content_type: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, content_type=content_type, status=status, headers=headers)
        self.data = data


# -- the views ----------------------------------------------------------------------------------


def documented(**kwargs: Any) -> Callable[[ViewMethod], ViewMethod]:
    """drf-spectacular's ``extend_schema`` for a view method, extending ServiceSchema whatever
    the project's ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``: ``extend_schema`` extends the
    method's own ``schema`` when it has one, else that setting as it was when this module was
    imported (DRF's AutoSchema unless set), which would break the schema page."""

    def decorate(method: ViewMethod) -> ViewMethod:
        if "schema" in getattr(method, "kwargs", {}):  # already extended: extend that
            return extend_schema(**kwargs)(method)
        method.schema = ServiceSchema  # type: ignore[attr-defined]
        extended = extend_schema(**kwargs)(method)  # now in extended.kwargs["schema"]
        del method.schema  # type: ignore[attr-defined]
        return extended

    return decorate


class ServiceAPIMixin(APIView):
    """Auth, permissions, throttles from ``STEALTH_SESSIONS_API`` (read per request), JSON only,
    and the API's own exception handler. Subclasses may set ``permission_classes`` etc. to
    override the settings for one view.

    An APIView subclass so that these attributes are checked against APIView's; the views'
    MRO is unchanged (APIView came after ViewSetMixin already)."""

    parser_classes: Sequence[type[BaseParser]] = [JSONParser]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    content_negotiation_class: type[BaseContentNegotiation] = JSONNegotiation
    schema: ViewInspector | None = ServiceSchema()
    # None (not a sequence, as APIView declares): "read STEALTH_SESSIONS_API per request".
    authentication_classes: Sequence[type[BaseAuthentication]] | None = None  # type: ignore[assignment]
    permission_classes: Sequence[_PermissionClass] | None = None  # type: ignore[assignment]
    throttle_classes: Sequence[type[BaseThrottle]] | None = None  # type: ignore[assignment]

    def get_authenticators(self) -> list[Any]:
        classes = self.authentication_classes
        return [c() for c in (api_settings.AUTHENTICATION_CLASSES if classes is None else classes)]

    def get_permissions(self) -> list[Any]:
        classes = self.permission_classes
        return [c() for c in (api_settings.PERMISSION_CLASSES if classes is None else classes)]

    def get_throttles(self) -> list[Any]:
        classes = self.throttle_classes
        return [c() for c in (api_settings.THROTTLE_CLASSES if classes is None else classes)]

    def get_exception_handler(self) -> Any:
        return exception_handler

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The history records that the API moved the user; a request never owns a user's lock
        # (even when a test client runs it inside the code holding one).
        with origin("api"), locking.no_owner():
            return super().dispatch(request, *args, **kwargs)

    @property
    def service(self) -> SessionService:
        return get_session_service()

    def respond(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponseBase:
        """``Response(data, status, headers)``, or, when DRF negotiated its JSONRenderer (as it
        does unless a subclass adds renderers), the same bytes rendered now in a plain
        HttpResponse. A Response renders later, in Django's TemplateResponse step, and keeps
        the view, request and renderer context until then, a reference cycle per request: on
        a warm POST step_to/, 45 of 600 µs (measured in-process), more than the service's own
        Python."""
        renderer = getattr(self.request, "accepted_renderer", None)
        if type(renderer) is not JSONRenderer or data is None:  # None: an empty body, DRF's way
            return Response(data, status=status, headers=headers)
        context = self.get_renderer_context()
        content = renderer.render(data, self.request.accepted_media_type, context)
        content_type = renderer.media_type
        if renderer.charset:
            content_type = f"{content_type}; charset={renderer.charset}"
        return RenderedResponse(data, content, content_type, status, headers)


class SessionViewSet(ServiceAPIMixin, viewsets.ViewSet):
    """Users' sessions, addressed by user id."""

    lookup_field = "user_id"
    # Anything but "/": phone numbers (+), e-mails (@, .), "ns:id", "%" and unicode.
    lookup_value_regex = r"[^/]+"

    # -- helpers --------------------------------------------------------------------------

    def _expected_version(self, request: Request) -> int | None:
        """If-Match ``"<version>"`` as the service's ``expected_version``; ``*`` means any."""
        value = request.META.get("HTTP_IF_MATCH")  # not request.headers: it copies them all
        if value is None or value.strip() == "*":
            return None
        match = _IF_MATCH.match(value)
        if match is None:
            raise BadRequest(
                'If-Match must be "<version>", e.g. "3" (quotes included)', "invalid_if_match"
            )
        return int(match.group(1))

    def _target(self, serializer_class: type[_S], request: Request) -> _S:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer

    def _move_target(self, request: Request) -> s.Target:
        """TargetSerializer's ``target()``. A plainly valid body skips DRF's parser plumbing
        and the serializer (whose fields are deep-copied per instance): together about 1 ms
        of a profiled write. Any other body goes the DRF way, errors included."""
        target = None
        meta = request.META
        length = meta.get("CONTENT_LENGTH") or ""
        # A target is short: a large body goes DRF's way (and Django's upload size limit).
        if meta.get("CONTENT_TYPE") == "application/json" and length.isdigit() and len(length) < 4:
            try:
                # As JSONParser (UTF-8); NaN etc. are not strings, so plain_target refuses them.
                target = s.plain_target(json.loads(request._request.body.decode("utf-8")))
            except (ValueError, RawPostDataException):
                target = None
        if target is None:
            target = self._target(s.TargetSerializer, request).target()
        return target

    def _scheduled(self, user_id: str) -> list[dict[str, Any]]:
        return [s.scheduled_step(x) for x in self.service.scheduled_steps(user_id)]

    def _session_response(
        self, session: Session, steps: list[ScheduledStep] | None = None
    ) -> HttpResponseBase:
        """The session with its pending steps (read now unless given)."""
        if steps is None:
            steps = self.service.scheduled_steps(session.user_id)
        data = s.session_summary(session)
        data["scheduled"] = [s.scheduled_step(x) for x in steps]
        return self.respond(data, headers={"ETag": f'"{session.version}"'})

    def _scheduling(self) -> SessionService:
        """The service, if scheduled steps are enabled (a SCHEDULER is configured)."""
        service = self.service
        if service.scheduler is None:
            raise SchedulingDisabled(
                "Scheduled steps are disabled: STEALTH_SESSIONS['SCHEDULER'] is None"
            )
        return service

    # -- collection -----------------------------------------------------------------------

    @documented(
        parameters=[s.ListQuerySerializer],
        responses={200: s.SessionPageSerializer, **_errors()},
        summary="List sessions, newest activity first (by user id with a prefix), with a cursor",
        operation_id="sessions_list",
    )
    def list(self, request: Request) -> HttpResponseBase:
        query = s.ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        slug = f"{q['flow']}->{q['state']}" if "state" in q else None
        sessions, cursor = self.service.list_sessions(
            flow=None if slug else q.get("flow"),
            slug=slug,
            user_id_prefix=q.get("user_id"),
            cursor=q.get("cursor"),
            limit=q.get("limit", api_settings.PAGE_SIZE),
        )
        url = request.build_absolute_uri()
        return self.respond(
            {
                "results": [s.session_summary(x) for x in sessions],
                "next_cursor": cursor,
                "next": None if cursor is None else replace_query_param(url, "cursor", cursor),
            }
        )

    @documented(responses={200: s.StatsSerializer, **_errors()}, summary="Users per flow and state")
    @action(detail=False, methods=["get"])
    def stats(self, request: Request) -> HttpResponseBase:
        counts = self.service.count_by_state()
        flows: dict[str, dict[str, Any]] = {}
        for slug, n in sorted(counts.items()):
            try:
                flow, state = parse(slug)
            except ValueError:
                continue  # malformed: only in "slugs", as stored
            entry = flows.setdefault(flow, {"total": 0, "states": {}})
            entry["total"] += n
            entry["states"][state] = n
        return self.respond({"total": sum(counts.values()), "flows": flows, "slugs": counts})

    # -- one session ----------------------------------------------------------------------

    @documented(
        parameters=[USER_ID],
        responses={200: s.SessionSerializer, **_errors(404)},
        summary="A user's session (ETag: its version)",
    )
    def retrieve(self, request: Request, user_id: str) -> HttpResponseBase:
        session, steps = self.service.get_with_scheduled(user_id)
        if session is None:
            raise NotFound(f"User {user_id[:100]!r} has no session", "no_session")
        return self._session_response(session, steps)

    @documented(
        parameters=[USER_ID, IF_MATCH],
        request=s.TargetSerializer,
        responses={200: s.SessionSerializer, **_errors(409, 412)},
        summary="Move the user without running the target's action (update_session_to)",
    )
    def update(self, request: Request, user_id: str) -> HttpResponseBase:
        target = self._move_target(request)
        session = self.service.update_session_to(
            user_id, **target, expected_version=self._expected_version(request)
        )
        return self._session_response(session)

    @documented(
        parameters=[USER_ID, IF_MATCH],
        responses={204: None, **_errors(409, 412)},
        summary="Reset: remove the session, previous, back-to and history",
    )
    def destroy(self, request: Request, user_id: str) -> HttpResponseBase:
        self.service.reset(user_id, expected_version=self._expected_version(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    # -- transitions ----------------------------------------------------------------------

    @documented(
        parameters=[USER_ID, IF_MATCH, IDEMPOTENCY_KEY],
        request=s.TargetSerializer,
        responses={200: s.SessionSerializer, **_errors(409, 412, 422)},
        summary="Move the user and run the target's action (step_to)",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def step_to(self, request: Request, user_id: str) -> HttpResponseBase:
        target = self._move_target(request)
        session = self.service.step_to(
            user_id, **target, expected_version=self._expected_version(request)
        )
        return self._session_response(session)

    @documented(
        parameters=[USER_ID, IF_MATCH, IDEMPOTENCY_KEY],
        request=s.EmptySerializer,
        responses={200: s.SessionSerializer, **_errors(409, 412, 422)},
        summary="Step to the stored back-to session",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def step_back(self, request: Request, user_id: str) -> HttpResponseBase:
        if not isinstance(request.data, Mapping) or request.data:  # not absent, not {}
            self._target(s.EmptySerializer, request)
        session = self.service.step_back(user_id, expected_version=self._expected_version(request))
        return self._session_response(session)

    @documented(
        parameters=[USER_ID, IF_MATCH, IDEMPOTENCY_KEY],
        request=s.TargetSerializer,
        responses={200: s.SessionSerializer, **_errors(409, 412, 422)},
        summary="Store the session step_back returns to (set_back_to)",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def back_to(self, request: Request, user_id: str) -> HttpResponseBase:
        target = self._move_target(request)
        session = self.service.set_back_to(
            user_id, **target, expected_version=self._expected_version(request)
        )
        return self._session_response(session)

    # -- scheduling -----------------------------------------------------------------------

    def _scheduled_response(self, user_id: str, step: Any) -> HttpResponseBase:
        session, steps = self.service.get_with_scheduled(user_id)
        body = {
            "step": s.scheduled_step(step),
            "session": None
            if session is None
            else {**s.session_summary(session), "scheduled": [s.scheduled_step(x) for x in steps]},
        }
        return self.respond(body, status=status.HTTP_201_CREATED)

    @documented(
        parameters=[USER_ID, IDEMPOTENCY_KEY],
        request=s.StepToInSerializer,
        responses={201: s.ScheduledResultSerializer, **_errors(409, 422, 501)},
        summary="Schedule a step_to after a delay",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def step_to_in(self, request: Request, user_id: str) -> HttpResponseBase:
        data = self._target(s.StepToInSerializer, request)
        step = self._scheduling().step_to_in(
            user_id,
            data.validated_data["delay"],
            **data.target(),
            if_unchanged=data.validated_data["if_unchanged"],
            data=data.validated_data["data"],
        )
        return self._scheduled_response(user_id, step)

    @documented(
        parameters=[USER_ID, IDEMPOTENCY_KEY],
        request=s.StepToAtSerializer,
        responses={201: s.ScheduledResultSerializer, **_errors(409, 422, 501)},
        summary="Schedule a step_to at a time (ISO 8601 with an offset)",
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def step_to_at(self, request: Request, user_id: str) -> HttpResponseBase:
        data = self._target(s.StepToAtSerializer, request)
        step = self._scheduling().step_to_at(
            user_id,
            data.validated_data["at"],
            **data.target(),
            if_unchanged=data.validated_data["if_unchanged"],
            data=data.validated_data["data"],
        )
        return self._scheduled_response(user_id, step)

    @documented(
        methods=["GET"],
        parameters=[USER_ID],
        responses={200: s.ScheduledStepSerializer(many=True), **_errors()},
        summary="The user's pending scheduled steps",
    )
    @documented(
        methods=["DELETE"],
        parameters=[USER_ID],
        responses={200: s.CancelledSerializer, **_errors(501)},
        summary="Cancel all the user's scheduled steps",
        operation_id="sessions_scheduled_cancel_all",
    )
    @action(detail=True, methods=["get", "delete"])
    def scheduled(self, request: Request, user_id: str) -> HttpResponseBase:
        if request.method == "DELETE":
            return self.respond({"cancelled": self._scheduling().cancel_scheduled(user_id)})
        return self.respond(self._scheduled(user_id))

    @documented(
        parameters=[USER_ID, OpenApiParameter("step_id", str, OpenApiParameter.PATH)],
        responses={204: None, **_errors(404, 501)},
        summary="Cancel one scheduled step",
        operation_id="sessions_scheduled_cancel_one",
    )
    @action(detail=True, methods=["delete"], url_path=r"scheduled/(?P<step_id>[^/]+)")
    def cancel_scheduled(self, request: Request, user_id: str, step_id: str) -> HttpResponseBase:
        if not self._scheduling().cancel_scheduled(user_id, step_id=step_id):
            raise NotFound(
                f"User {user_id[:100]!r} has no scheduled step {step_id[:100]!r}",
                "no_scheduled_step",
            )
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlowViewSet(ServiceAPIMixin, viewsets.ViewSet):
    """The flow map, for clients to introspect."""

    @documented(
        responses={200: s.FlowMapSerializer, **_errors()},
        summary="The flow map",
        operation_id="flows_list",
    )
    def list(self, request: Request) -> HttpResponseBase:
        fm = self.service.flow_map
        flows: list[dict[str, Any]] = []
        if fm is None:
            return self.respond({"flows": flows})
        for name in fm.flows():
            states = [fm.state(name, st) for st in fm.states(name)]
            flows.append(
                {
                    "name": name,
                    "initial_state": fm.initial_state(name),
                    "states": [
                        {
                            "name": st.name,
                            "slug": st.slug,
                            "fails_to": st.fails_to,
                            "redirects_to": st.redirects_to,
                        }
                        for st in states
                    ],
                }
            )
        return self.respond({"flows": flows})


class SchemaView(SpectacularAPIView):
    """The OpenAPI document of the API. Every view of the API carries its own schema class
    (``ServiceSchema``), and the two documentation views none (left out of the document), so
    neither ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` nor ``SPECTACULAR_SETTINGS`` is needed."""

    schema = None


class OfflineSwaggerView(SpectacularSwaggerView):
    """Swagger UI from drf-spectacular-sidecar's static files: no CDN, works offline
    (needs ``drf_spectacular_sidecar`` in INSTALLED_APPS), without the
    ``SPECTACULAR_SETTINGS["SWAGGER_UI_DIST"] = "SIDECAR"`` setting it would otherwise need."""

    schema = None  # not an endpoint of the API: left out of the OpenAPI document

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        dist = "drf_spectacular_sidecar/swagger-ui-dist/"
        response.data.update(
            swagger_ui_css=static(dist + "swagger-ui.css"),
            swagger_ui_bundle=static(dist + "swagger-ui-bundle.js"),
            swagger_ui_standalone=static(dist + "swagger-ui-standalone-preset.js"),
            favicon_href=static(dist + "favicon-32x32.png"),
        )
        return response
