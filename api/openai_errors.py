"""Errors on the OpenAI-compatible routes, in OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``.

The rest of the API keeps its own error body (api/errors.py). These routes use
``OpenAIRoute``, which turns every error raised while handling a request (body validation,
keys, the pipeline) into this shape, so that OpenAI clients raise their usual exceptions
(``BadRequestError``, ``AuthenticationError``, ``NotFoundError``, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api.auth import AuthenticationError, ForbiddenError
from api.errors import InvalidRequest, PayloadTooLarge
from api.openai_protocol import OpenAIErrorResponse
from rag.errors import LLMResponseError, LLMUnavailableError, NotFoundError

logger = logging.getLogger(__name__)

OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorResponse, "description": "Invalid request (OpenAI's error shape)"},
    401: {"model": OpenAIErrorResponse, "description": "No API key, or an unknown or revoked one"},
    404: {"model": OpenAIErrorResponse, "description": "No such model (or a collection the key may not see)"},
    413: {"model": OpenAIErrorResponse, "description": "The request body is too large"},
    500: {"model": OpenAIErrorResponse, "description": "Internal error"},
    502: {"model": OpenAIErrorResponse, "description": "The model server gave an unusable answer"},
    503: {"model": OpenAIErrorResponse, "description": "The model server is not available; see Retry-After"},
}


class ModelNotFound(NotFoundError):
    """A model id that is not served to this key."""


class OpenAIInvalidRequest(InvalidRequest):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def openai_error(
    status: int, kind: str, message: str, param: str | None = None, code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(exc: Exception) -> JSONResponse:
    """The OpenAI-shaped response for an error raised while handling a request."""
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', '')}" for e in errors
        )
        return openai_error(400, "invalid_request_error", message or "invalid request", ".".join(loc) or None)
    if isinstance(exc, PayloadTooLarge):
        return openai_error(413, "invalid_request_error", exc.message)
    if isinstance(exc, InvalidRequest):
        return openai_error(400, "invalid_request_error", exc.message, getattr(exc, "param", None))
    if isinstance(exc, AuthenticationError):
        return openai_error(
            401, "authentication_error", str(exc), code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, ForbiddenError):
        return openai_error(403, "permission_error", str(exc))
    if isinstance(exc, ModelNotFound):
        return openai_error(404, "invalid_request_error", str(exc), "model", "model_not_found")
    if isinstance(exc, NotFoundError):
        return openai_error(404, "invalid_request_error", str(exc), code="not_found")
    if isinstance(exc, LLMUnavailableError):
        logger.warning("model server unavailable: %s", exc)
        return openai_error(
            503, "server_error", str(exc).splitlines()[0], code="llm_unavailable",
            headers={"Retry-After": str(exc.retry_after_s)},
        )  # fmt: skip
    if isinstance(exc, LLMResponseError):
        return openai_error(502, "server_error", str(exc), code="llm_error")
    if isinstance(exc, HTTPException):
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return openai_error(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))
    logger.exception("unhandled error", exc_info=exc)
    return openai_error(500, "server_error", "internal server error; see the service log", code="internal_error")


class OpenAIRoute(APIRoute):
    """A route whose errors leave in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error becomes an OpenAI error body
                return error_response(exc)

        return guarded
