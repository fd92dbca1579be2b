"""Request body limits enforced before the bytes arrive, as one ASGI middleware.

A declared ``Content-Length`` over the limit is answered 413 at once: the body is
never read (and a client that sent ``Expect: 100-continue`` never sends it). A
body without a length (chunked) is counted while it streams in and cut off with
413 as soon as it passes the limit. Either way the connection is then closed,
since the rest of the body was not read.

The limit depends on the operation: an upload (``POST /documents``) may carry
``RAG_API__MAX_UPLOAD_MB`` plus the other form fields (three times that as a
URL-encoded form, where one byte of text can take three characters); every other
body is JSON and gets what the largest JSON request needs (a ``/summarize`` text
of ``RAG_API__MAX_SUMMARIZE_CHARS``, every character escaped).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_json
from api.upload_form import URLENCODED_FACTOR
from rag.config import APISettings

# Room for the fields other than the file or text (metadata, collection, source) and part headers.
FORM_ALLOWANCE_BYTES = 1_000_000
MIN_JSON_BODY_BYTES = 1_000_000
_ESCAPED_CHAR_BYTES = 6  # \uXXXX


def upload_body_limit(api: APISettings, urlencoded: bool = False) -> int:
    return api.max_upload_bytes * (URLENCODED_FACTOR if urlencoded else 1) + FORM_ALLOWANCE_BYTES


def json_body_limit(api: APISettings) -> int:
    largest_text = max(api.max_summarize_chars, api.max_question_chars * 10)
    return max(MIN_JSON_BODY_BYTES, largest_text * _ESCAPED_CHAR_BYTES + 65_536)


def body_limit_for(api: APISettings) -> Callable[[Scope], int]:
    upload, encoded, other = (
        upload_body_limit(api),
        upload_body_limit(api, urlencoded=True),
        json_body_limit(api),
    )

    def limit(scope: Scope) -> int:
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/documents":
            return other
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        return (
            encoded
            if content_type.lower().startswith(b"application/x-www-form-urlencoded")
            else upload
        )

    return limit


def _megabytes(limit: int) -> str:
    return f"{limit / 1_000_000:g} MB"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (413, connection closed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {_megabytes(limit)}",
            headers={"connection": "close"},
        )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself refuses a malformed length
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send, f"the request body ({_megabytes(declared)}) is larger "
                               f"than {_megabytes(limit)}; nothing was read")  # fmt: skip
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._refuse(scope, receive, send, str(exc.detail))

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        response = error_json(413, "payload_too_large", message, headers={"connection": "close"})
        await response(scope, receive, send)
