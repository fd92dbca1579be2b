"""Every error leaves the API through one table, in one of two shapes.

``ERROR_TABLE`` maps each exception class to its status and its names in both shapes:
the service's own body ``{"error": {"type", "message", "details"}}`` (REST routes and the
``error`` event of a stream) and OpenAI's ``{"error": {"message", "type", "param", "code"}}``
(the ``/v1`` routes, api.openai_errors). ``describe`` looks an exception up once; the
handlers, the stream and the OpenAI routes only choose the shape.

Exceptions, most specific first where they inherit::

    InvalidRequest (422; OpenAI 400)
    └── PayloadTooLarge (413)
    MetadataLimitError (422)            upload metadata over the limits, before a job exists
    AuthenticationError (401)           ForbiddenError (403)
    NotFoundError (404)
    └── ModelNotFound (404, OpenAI code model_not_found)
    LLMUnavailableError (503, Retry-After)   LLMResponseError (502)
    ConfigurationError, IndexMismatchError (500)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.auth import AuthenticationError, ForbiddenError
from api.schemas import ErrorResponse
from indexer.metadata_limits import MetadataLimitError
from rag.errors import (
    ConfigurationError,
    IndexMismatchError,
    LLMResponseError,
    LLMUnavailableError,
    NotFoundError,
)

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "internal server error; see the service log"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "The body could not be parsed (not JSON, not UTF-8, broken form)",
    },
    401: {"model": ErrorResponse, "description": "No API key, or an unknown or revoked one"},
    403: {"model": ErrorResponse, "description": "The API key may not do this"},
    404: {"model": ErrorResponse, "description": "Not found"},
    413: {
        "model": ErrorResponse,
        "description": "The request body is larger than allowed (refused before it is read)",
    },
    422: {"model": ErrorResponse, "description": "Invalid request"},
    500: {"model": ErrorResponse, "description": "Internal error"},
    502: {"model": ErrorResponse, "description": "The model server gave an unusable answer"},
    503: {
        "model": ErrorResponse,
        "description": "The model server or the service is not available; see Retry-After",
    },
    504: {
        "model": ErrorResponse,
        "description": "The request took longer than the configured limit",
    },
}


class InvalidRequest(Exception):
    """A request the service will not do as sent; ``param`` names the field where known."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class PayloadTooLarge(InvalidRequest):
    """An upload over the configured size (413)."""


class ModelNotFound(NotFoundError):
    """A model id that is not served to this key (OpenAI-compatible routes)."""


@dataclass(frozen=True)
class ErrorKind:
    """One row of the table: the status and the error's names in both shapes."""

    status: int
    kind: str
    openai_type: str
    openai_status: int | None = None  # where OpenAI's clients expect another status
    openai_code: str | None = None
    openai_param: str | None = None


ERROR_TABLE: tuple[tuple[type[Exception], ErrorKind], ...] = (
    (PayloadTooLarge, ErrorKind(413, "payload_too_large", "invalid_request_error")),
    (InvalidRequest, ErrorKind(422, "invalid_request", "invalid_request_error", openai_status=400)),
    (
        MetadataLimitError,
        ErrorKind(422, "invalid_request", "invalid_request_error", openai_status=400),
    ),
    (
        AuthenticationError,
        ErrorKind(401, "unauthorized", "authentication_error", openai_code="invalid_api_key"),
    ),
    (ForbiddenError, ErrorKind(403, "forbidden", "permission_error")),
    (
        ModelNotFound,
        ErrorKind(
            404,
            "not_found",
            "invalid_request_error",
            openai_code="model_not_found",
            openai_param="model",
        ),
    ),
    (NotFoundError, ErrorKind(404, "not_found", "invalid_request_error", openai_code="not_found")),
    (
        LLMUnavailableError,
        ErrorKind(503, "llm_unavailable", "server_error", openai_code="llm_unavailable"),
    ),
    (LLMResponseError, ErrorKind(502, "llm_error", "server_error", openai_code="llm_error")),
    (ConfigurationError, ErrorKind(500, "configuration_error", "server_error")),
    (IndexMismatchError, ErrorKind(500, "configuration_error", "server_error")),
)
_HTTP_KINDS = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_INTERNAL = ErrorKind(500, "internal_error", "server_error", openai_code="internal_error")


@dataclass(frozen=True)
class ApiError:
    """An exception described once; ``response`` and ``openai_response`` are its two shapes."""

    row: ErrorKind
    message: str
    details: Any = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return self.row.status

    def response(self, extra_headers: dict[str, str] | None = None) -> JSONResponse:
        headers = {**self.headers, **(extra_headers or {})} or None
        return error_json(self.status, self.row.kind, self.message, self.details, headers)

    def log(self, exc: Exception) -> None:
        """One rule for every shape: a dead model server is a warning; any other error on the
        server's side (5xx not from the model server nor raised on purpose) with its trace."""
        if isinstance(exc, LLMUnavailableError):
            logger.warning("model server unavailable: %s", exc)
        elif self.status >= 500 and not isinstance(exc, (HTTPException, LLMResponseError)):
            logger.exception("request failed", exc_info=exc)

    def openai_response(self) -> JSONResponse:
        row = self.row
        body = {
            "error": {
                "message": self.message,
                "type": row.openai_type,
                "param": self.param or row.openai_param,
                "code": row.openai_code,
            }
        }
        return JSONResponse(
            body, status_code=row.openai_status or row.status, headers=self.headers or None
        )


def describe(exc: Exception) -> ApiError:
    """The table's row for ``exc`` with its message; an unknown exception is an internal error."""
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, HTTPException):
        row = ErrorKind(exc.status_code, _HTTP_KINDS.get(exc.status_code, "http_error"),
                        "invalid_request_error" if exc.status_code < 500 else "server_error")  # fmt: skip
        return ApiError(row, str(exc.detail), headers=dict(getattr(exc, "headers", None) or {}))
    for cls, row in ERROR_TABLE:
        if isinstance(exc, cls):
            return ApiError(
                row, _message(exc), param=getattr(exc, "param", None), headers=_headers(exc)
            )
    return ApiError(_INTERNAL, INTERNAL_ERROR_MESSAGE)


def _message(exc: Exception) -> str:
    if isinstance(exc, InvalidRequest):
        return exc.message
    if isinstance(exc, LLMUnavailableError):
        return str(exc).splitlines()[0]  # the first line says it; the rest is the server's log
    return str(exc)


def _headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, AuthenticationError):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, LLMUnavailableError):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


def _validation_error(exc: RequestValidationError) -> ApiError:
    details = [
        {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
    first = [str(part) for part in (details[0]["loc"] if details else []) if part != "body"]
    row = ErrorKind(422, "invalid_request", "invalid_request_error", openai_status=400)
    return ApiError(row, summary or "invalid request", details, param=".".join(first) or None)


def error_json(
    status: int, kind: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The service's error body for errors raised outside a route (the ASGI middlewares)."""
    body = {"error": {"type": kind, "message": message, "details": details}}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """One handler for every row of the table, validation and HTTP errors, and the rest."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        error = describe(exc)
        error.log(exc)
        if error.row is _INTERNAL:
            # Reached only by an error of a middleware (api.unhandled catches the rest): the
            # server drops the connection after this, so say so.
            return error.response({"connection": "close"})
        return error.response()

    for cls in (RequestValidationError, HTTPException, *(cls for cls, _ in ERROR_TABLE), Exception):
        app.add_exception_handler(cls, handle)
