"""Client JSON read with bounds: nesting depth checked before parsing, no NaN or infinity.

Python's ``json.loads`` recurses once per nesting level, so a body such as
``[[[[…]]]]`` 100,000 levels deep raises ``RecursionError`` (and a few hundred
levels pass the parser only to break later code that walks the value). The
depth is therefore measured first, by a flat scan that ignores brackets inside
strings, and nothing deeper than the limit is ever handed to the parser.
``NaN``, ``Infinity`` and numbers beyond a float's range (``1e400``) are
refused as well: they cannot be stored, compared or written back as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_json

# Escapes first (so that \" ends no string), then whole strings, then all that is no bracket:
# three linear passes in C. An unterminated string keeps its brackets (refused as too deep
# rather than as broken; either way it is refused).
_ESCAPE = re.compile(r"\\.", re.S)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_OPENING = np.zeros(256, dtype=np.int64)
_OPENING[[ord("["), ord("{")]] = 1
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_INT_DIGITS = 309  # a float holds at most about 1.8e308: longer integers are never in range


class UnsafeJSON(ValueError):
    """Parsable perhaps, but not accepted: too deep, or a number that is not finite."""


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of ``text`` outside strings, without recursion and
    without a Python loop over the text (a body of a million brackets costs milliseconds)."""
    structure = _NOT_BRACKET.sub("", _STRING.sub("", _ESCAPE.sub("", text)))
    if not structure:
        return 0
    codes = np.frombuffer(structure.encode("ascii"), dtype=np.uint8)
    steps = 2 * _OPENING[codes] - 1  # +1 opening, -1 closing
    return max(0, int(np.cumsum(steps).max()))


def _refuse_constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not a number JSON allows here")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSON(f"the number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise UnsafeJSON(
            f"a number of {len(text.lstrip('-'))} digits is out of range (at most {_MAX_INT_DIGITS})"
        )
    return int(text)


def check_depth(text: str, max_depth: int) -> None:
    if nesting_depth(text) > max_depth:
        raise UnsafeJSON(f"it is nested deeper than {max_depth} levels (RAG_API__MAX_JSON_DEPTH)")


def _check_text(value: Any) -> None:
    """Every string (keys too) must be text: an escaped lone surrogate (``"\\ud800"``) is not,
    and could be neither stored nor written back. The depth is bounded, but a stack is cheap."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise UnsafeJSON(
                    "it holds an escaped lone surrogate (\\ud800-\\udfff), which is not text"
                ) from exc


def loads_bounded(raw: str | bytes, max_depth: int) -> Any:
    """``json.loads`` that refuses deep nesting, non-finite or huge numbers and lone
    surrogates (``UnsafeJSON``); syntax errors are ``json.JSONDecodeError`` as usual."""
    text = raw.decode(json.detect_encoding(raw)) if isinstance(raw, bytes) else raw
    check_depth(text, max_depth)
    value = json.loads(
        text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
    )
    if _SURROGATE_ESCAPE.search(text):
        _check_text(value)
    return value


def _is_json(scope: Scope) -> bool:
    content_type = ""
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


class JSONGuardMiddleware:
    """Checks every JSON request body with ``loads_bounded`` before the app parses it.

    The body (already bounded in size by ``BodyLimitMiddleware``) is read here and
    handed on unchanged; a refused one gets 400 with the reason. Syntax errors are
    left to the app, which reports them as it always has.
    """

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not _is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            loads_bounded(bytes(body), self.max_depth)
        except UnsafeJSON as exc:
            response = error_json(400, "invalid_request", f"the JSON body was refused: {exc}")
            await response(scope, receive, send)
            return
        except (ValueError, UnicodeDecodeError):
            pass  # a syntax or encoding error: the app's own parser reports it

        if messages[-1]["type"] == "http.request":  # whole: hand it on as one message
            messages = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
