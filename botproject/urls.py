from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    # The chat: the page, the webhook a messaging platform would call, the replies' outbox.
    path("", views.chat, name="chat"),
    path("webhook/", views.webhook, name="webhook"),
    path("outbox/", views.outbox, name="outbox"),
    path("admin/", admin.site.urls),
    # The bots' HTTP API; schema at /api/schema/, docs at /api/docs/ (see docs/api.md).
    path("api/", include("stealth_sessions.api.urls")),
]
