"""The HTTP API: a Django REST Framework adapter over SessionService.

Mount it with ``path("api/", include("stealth_sessions.api.urls"))``. It calls the service and
nothing below it; every error it answers is mapped in :mod:`stealth_sessions.api.errors`.
"""
