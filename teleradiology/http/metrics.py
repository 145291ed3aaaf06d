"""Prometheus metrics: this process's HTTP and DIMSE traffic, and the network's gauges.

Counters and histograms are per process (each API or DICOM replica is scraped on its own);
the gauges (open cases, overdue cases, unacknowledged reports, pending DICOM copies) are
read from the index at scrape time, so every replica answers the same for them. Labels are
routes, statuses and facility codes: never patient data or UIDs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from storage.metrics import NetworkGauges, network_gauges
from teleradiology.http.context import POOL

HTTP_REQUESTS = Counter(
    "telemed_http_requests",
    "HTTP requests answered, by route pattern, method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "telemed_http_request_seconds",
    "Time to answer an HTTP request, by route pattern",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def _route_of(request: web.Request) -> str:
    """The route's pattern (``/dicomweb/studies/{study}``), never the concrete path."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_of(request)
        HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)


class _Gauges(Collector):
    """The network's gauges, as read once for one scrape."""

    def __init__(self, gauges: NetworkGauges) -> None:
        self._gauges = gauges

    def collect(self) -> list[GaugeMetricFamily]:
        g = self._gauges
        cases = GaugeMetricFamily(
            "telemed_open_cases",
            "Cases scheduled or in progress, by reading pool, specialty, state and priority",
            labels=["pool", "specialty", "status", "priority"],
        )
        overdue = GaugeMetricFamily(
            "telemed_overdue_cases",
            "Open cases past their deadline, by reading pool, specialty, state and priority",
            labels=["pool", "specialty", "status", "priority"],
        )
        for c in g.open_cases:
            labels = [c.pool, c.specialty, c.status, c.priority]
            cases.add_metric(labels, c.cases)
            overdue.add_metric(labels, c.overdue)
        unacknowledged = GaugeMetricFamily(
            "telemed_unacknowledged_reports",
            "Final reports the sending clinic has not acknowledged, by clinic and conclusion",
            labels=["facility", "conclusion"],
        )
        for (facility, conclusion), n in sorted(g.unacknowledged_reports.items()):
            unacknowledged.add_metric([facility, conclusion], n)
        sends = GaugeMetricFamily(
            "telemed_report_dicom_sends",
            "DICOM copies of reports for clinics' workstations, by state",
            labels=["status"],
        )
        for status in ("pending", "sent", "failed"):
            sends.add_metric([status], g.dicom_sends.get(status, 0))
        return [
            cases,
            overdue,
            unacknowledged,
            sends,
            GaugeMetricFamily("telemed_studies", "Studies in the index", value=g.studies),
            GaugeMetricFamily("telemed_instances", "Instances in the index", value=g.instances),
            GaugeMetricFamily(
                "telemed_instance_bytes", "Bytes of stored instances", value=g.instance_bytes
            ),
            GaugeMetricFamily(
                "telemed_ingest_rejections",
                "Instances refused and recorded for administrators",
                value=g.rejections,
            ),
        ]


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition: this process's counters, then the network's gauges."""
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Gauges(await network_gauges(request.app[POOL])))
    body = generate_latest(REGISTRY) + generate_latest(gauges)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
