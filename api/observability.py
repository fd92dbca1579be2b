"""Request ids, access logs, request metrics and the request time limit, as one ASGI middleware.

Every log line written while a request is handled carries its id (from the
``X-Request-ID`` header, or a new one), which is also returned in that header.
A client's id is used only when it matches ``REQUEST_ID_PATTERN`` (at most 128
letters, digits and ``. _ : + / = -``); any other is replaced by a new one, so
nothing a client sends is echoed or logged unchecked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_json

logger = logging.getLogger("rag.access")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")

REQUESTS = Counter(
    "rag_http_requests_total", "HTTP requests by route and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "rag_http_request_duration_seconds",
    "Time to the end of the response, by route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/documents/{document_id}``): bounded label values."""
    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", scope["path"]))
    return "unmatched"


def client_request_id(scope: Scope) -> str | None:
    """The request's own X-Request-ID when it is well-formed, else None."""
    for name, value in scope.get("headers") or []:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if REQUEST_ID_PATTERN.fullmatch(text) else None
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, request_timeout_s: float) -> None:
        self.app = app
        self.request_timeout_s = request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = client_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        response = _ResponseWatch(send, request_id)
        try:
            async with asyncio.timeout(self.request_timeout_s) as response.deadline:
                await self.app(scope, receive, response.send)
        except TimeoutError:
            if response.started:
                raise
            await self._time_out(scope, receive, send, response, request_id)
        finally:
            _record(scope, response.status, time.perf_counter() - started)
            request_id_var.reset(token)

    async def _time_out(
        self, scope: Scope, receive: Receive, send: Send, response: _ResponseWatch, request_id: str
    ) -> None:
        response.status = 504
        message = f"the request took longer than {self.request_timeout_s:g} s and was stopped"
        timed_out = error_json(504, "timeout", message)
        timed_out.headers["x-request-id"] = request_id
        await timed_out(scope, receive, send)


class _ResponseWatch:
    """Passes a response on with its request id, noting its status; once it has started (a
    stream), the request's time limit no longer applies."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._request_id = request_id.encode("latin-1")
        self.status = 500
        self.started = False
        self.deadline: asyncio.Timeout | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            message["headers"] = [*message.get("headers", []), (b"x-request-id", self._request_id)]
            if self.deadline is not None:
                self.deadline.reschedule(None)  # a started response (a stream) may run on
        await self._send(message)


def _record(scope: Scope, status: int, elapsed: float) -> None:
    """The request's metrics and its access-log line."""
    route = _route_template(scope)
    REQUESTS.labels(scope["method"], route, str(status)).inc()
    REQUEST_SECONDS.labels(scope["method"], route).observe(elapsed)
    logger.info(
        "%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed * 1000,
        extra={"method": scope["method"], "path": scope["path"], "status": status,
               "duration_ms": round(elapsed * 1000, 1)},
    )  # fmt: skip
