"""Mount with ``path("api/", include("stealth_sessions.api.urls"))``.

Routes (relative to the mount point): ``sessions/``, ``sessions/stats/``,
``sessions/<user_id>/`` and its actions, ``flows/``, ``schema/`` (OpenAPI 3),
``docs/`` (Swagger UI, served offline from drf-spectacular-sidecar; Redoc is left out: its
template loads Google fonts).
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import FlowViewSet, OfflineSwaggerView, SchemaView, SessionViewSet

app_name = "stealth_sessions_api"

router = SimpleRouter()
router.register("sessions", SessionViewSet, basename="session")
router.register("flows", FlowViewSet, basename="flow")

SCHEMA = f"{app_name}:schema"

urlpatterns = [
    *router.urls,
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", OfflineSwaggerView.as_view(url_name=SCHEMA), name="docs"),
]
