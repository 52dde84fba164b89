"""Prometheus metrics, through prometheus_client (``pip install 'stealth-sessions[metrics]'``
and ``STEALTH_SESSIONS['METRICS'] = True``). Registered in prometheus_client's default
registry, which django-prometheus's ``/metrics`` view and prometheus_client's own exporters
(``start_http_server``, ``make_wsgi_app``) serve::

    stealth_sessions_transitions_total{method, origin}   transitions written
    stealth_sessions_scheduled_steps_total{outcome}      scheduled steps run (applied,
                                                         dropped, failed, gone, early, error)
    stealth_sessions_scheduled_step_lag_seconds          from a step's due time to applied
    stealth_sessions_store_errors_total{where}           SessionStoreUnavailable: answered as
                                                         a 503 (api, admin) or met by a job
    stealth_sessions_users{flow, state}                  users with a session, counted from
                                                         the indexes on each scrape

Counting costs nothing when METRICS is off: the hooks below (called by the service, the
scheduled steps and the views) return at once. Each process counts its own (web servers, RQ
workers): see the README's "Operating" for exposing a worker's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from django.core.signals import setting_changed

from .conf import conf
from .context import current_origin
from .exceptions import InvalidSlug, StealthSessionsError
from .slugs import parse

logger = logging.getLogger("stealth_sessions.metrics")

# Seconds from due to applied: RQ's scheduler looks every second; a lost job waits for the
# sweep (STEP_SWEEP_GRACE, 5 minutes by default).
LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """The app's metrics in one registry (created once per process: prometheus_client
    refuses a name registered twice)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.transitions = Counter(
            "stealth_sessions_transitions",
            "Session transitions written, by method and origin.",
            ["method", "origin"],
            registry=registry,
        )
        self.scheduled_steps = Counter(
            "stealth_sessions_scheduled_steps",
            "Scheduled steps run, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.step_lag = Histogram(
            "stealth_sessions_scheduled_step_lag_seconds",
            "Seconds from a scheduled step's due time to its being applied.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            "stealth_sessions_store_errors",
            "SessionStoreUnavailable errors, by where they were met.",
            ["where"],
            registry=registry,
        )
        registry.register(UsersCollector(self))


class UsersCollector:
    """``stealth_sessions_users{flow, state}``, from count_by_state() when scraped (one bounded
    call per shard), never counted per request."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Any]:
        # Without describe(), registering would call collect(), hence Redis, at start-up.
        yield self._family()

    def collect(self) -> Iterator[Any]:
        if _active is None:
            return
        from .service import get_session_service

        try:
            counts = get_session_service().count_by_state()
        except StealthSessionsError as exc:
            # The other metrics are still worth scraping: this one is left out.
            self.metrics.store_errors.labels("metrics").inc()
            logger.warning("Could not count users per state for the metrics: %s", exc)
            return
        family = self._family()
        for slug, n in sorted(counts.items()):
            try:
                flow, state = parse(slug)
            except InvalidSlug:
                flow, state = "(malformed)", slug
            family.add_metric([flow, state], n)
        yield family

    @staticmethod
    def _family() -> Any:
        from prometheus_client.core import GaugeMetricFamily

        return GaugeMetricFamily(
            "stealth_sessions_users",
            "Users with a session, by flow and state (expired sessions excluded).",
            labels=["flow", "state"],
        )


_created: Metrics | None = None
_active: Metrics | None = None


def install() -> Metrics:
    """Start counting, in prometheus_client's default registry (done at start-up when
    STEALTH_SESSIONS['METRICS'] is True)."""
    global _created, _active
    if _created is None:
        from prometheus_client import REGISTRY

        _created = Metrics(REGISTRY)
    _active = _created
    return _created


def uninstall() -> None:
    """Stop counting (the metrics stay registered, frozen, and users is no longer reported)."""
    global _active
    _active = None


def install_if_enabled() -> None:
    if conf.METRICS is not True:  # anything else is reported by the system check E005
        uninstall()
        return
    with suppress(ImportError):  # reported by the system check stealth_sessions.E012
        install()


def transition(method: str) -> None:
    """A transition was written (counted by the service itself, not by a post_transition
    receiver: the async service then needs no thread for it)."""
    if _active is not None:
        _active.transitions.labels(method, current_origin()).inc()


def scheduled_step(outcome: str, lag: float | None = None) -> None:
    """A scheduled step ran with ``outcome``; ``lag``: seconds from due to applied."""
    if _active is None:
        return
    _active.scheduled_steps.labels(outcome).inc()
    if lag is not None:
        _active.step_lag.observe(max(lag, 0.0))


def store_unavailable(where: str) -> None:
    """A SessionStoreUnavailable was answered as a 503 (``where``: "api", "admin") or stopped
    a job ("scheduler", "bulk")."""
    if _active is not None:
        _active.store_errors.labels(where).inc()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "STEALTH_SESSIONS":
        install_if_enabled()


setting_changed.connect(_settings_changed)
