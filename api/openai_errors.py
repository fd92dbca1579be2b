"""Errors on the OpenAI-compatible routes, in OpenAI's shape:
``{"error": {"message", "type", "param", "code"}}``.

The rest of the API keeps its own error body (api/errors.py). These routes use
``OpenAIRoute``, which turns every error raised while handling a request (body validation,
keys, the pipeline) into this shape, so that OpenAI clients raise their usual exceptions
(``BadRequestError``, ``AuthenticationError``, ``NotFoundError``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.errors import describe
from api.openai_protocol import OpenAIErrorResponse

OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": OpenAIErrorResponse, "description": "Invalid request (OpenAI's error shape)"},
    401: {"model": OpenAIErrorResponse, "description": "No API key, or an unknown or revoked one"},
    404: {
        "model": OpenAIErrorResponse,
        "description": "No such model (or a collection the key may not see)",
    },
    413: {"model": OpenAIErrorResponse, "description": "The request body is too large"},
    500: {"model": OpenAIErrorResponse, "description": "Internal error"},
    502: {"model": OpenAIErrorResponse, "description": "The model server gave an unusable answer"},
    503: {
        "model": OpenAIErrorResponse,
        "description": "The model server is not available; see Retry-After",
    },
}


def error_response(exc: Exception) -> JSONResponse:
    """The OpenAI-shaped response for an error raised while handling a request."""
    error = describe(exc)
    error.log(exc)
    return error.openai_response()


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
