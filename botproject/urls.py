from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The bots' HTTP API; schema at /api/schema/, docs at /api/docs/ (see docs/api.md).
    path("api/", include("stealth_sessions.api.urls")),
]
