"""The last resort: an unexpected exception still gets a whole 500 response.

Starlette's own handler for ``Exception`` sends its response and then re-raises,
and the server, seeing the exception, drops the connection: a client that reuses
it gets ECONNRESET. Here the exception is logged and answered with the one error
shape and ``connection: close``, and goes no further. A response that had already
started (a stream) cannot be completed: the exception goes on, so that the server
ends it.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import INTERNAL_ERROR_MESSAGE, error_json

logger = logging.getLogger(__name__)


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            logger.exception(
                "unhandled error in %s %s", scope["method"], scope["path"], exc_info=exc
            )
            if started:
                raise
            response = error_json(
                500, "internal_error", INTERNAL_ERROR_MESSAGE, headers={"connection": "close"}
            )
            await response(scope, receive, send)
