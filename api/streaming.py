"""Server-sent events: ``token`` events as the model writes, then ``done`` (or ``error``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from api.errors import describe

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or with `stream: true` a `text/event-stream` of `token` events "
        '(`{"text": ...}`), then one `done` event with the full JSON body, or an `error` event '
        "with the error body.",
        "content": {
            "text/event-stream": {
                # One server-sent event (the stream is a sequence of them).
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["token", "done", "error"]},
                        "data": {
                            "type": "string",
                            "description": 'JSON: {"text": ...} for token, the full response body for '
                            "done, the error body for error",
                        },
                    },
                }
            }
        },
    }
}


def token_event(text: str) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps({"text": text}), event="token")


def done_event(body: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(body), event="done")


def event_stream(produce: Callable[[], AsyncIterator[ServerSentEvent]]) -> EventSourceResponse:
    async def guarded() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in produce():
                yield event
        except Exception as exc:  # the status line has gone: the error travels as an event
            error = describe(exc)
            error.log(exc)
            body = {"error": {"type": error.row.kind, "message": error.message}}
            yield ServerSentEvent(data=json.dumps(body), event="error")

    return EventSourceResponse(guarded(), ping=15)
