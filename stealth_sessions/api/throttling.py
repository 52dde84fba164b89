"""Throttling by scope: ``stealth_sessions_read`` for GET/HEAD/OPTIONS, ``stealth_sessions_write``
for the rest. A scope without a rate in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` is not
throttled (DRF's ScopedRateThrottle would refuse to start), so the default costs nothing."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings as drf_settings
from rest_framework.throttling import ScopedRateThrottle

READ_SCOPE = "stealth_sessions_read"
WRITE_SCOPE = "stealth_sessions_write"


class SessionsScopedThrottle(ScopedRateThrottle):
    """ScopedRateThrottle keyed by user (or IP), with the scope chosen by the method."""

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = READ_SCOPE if request.method in SAFE_METHODS else WRITE_SCOPE
        # Read at access time (DRF binds THROTTLE_RATES at import), so override_settings works.
        # The stubs type the rates as numbers; DRF's are "<num>/<period>" strings (or None).
        self.rate = drf_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[assignment]
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super(ScopedRateThrottle, self).allow_request(request, view)
