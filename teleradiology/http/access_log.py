"""The access log: who asked for which route, the answer and its time, and never the query
string (a QIDO's ``?PatientID=`` or ``?PatientName=`` is patient data)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

LOGGER = logging.getLogger("aiohttp.access")


class AccessLogger(AbstractAccessLogger):
    """One line per request: address, method, path (without its query), status, bytes sent,
    seconds taken."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.3f',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


def runner_options() -> dict[str, Any]:
    """How the web runner logs requests (``web.run_app`` and the tests' servers alike)."""
    return {"access_log": LOGGER, "access_log_class": AccessLogger}
