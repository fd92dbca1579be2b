"""A scripted OpenAI-compatible model server, on the real HTTP interface.

It speaks what the service's client (``rag.generation.llm.OpenAICompatibleLLM``, the openai
SDK) speaks to vLLM: ``GET /v1/models`` (one model, with vLLM's ``max_model_len``),
``POST /v1/chat/completions`` and ``POST /v1/completions``, each plain or streamed as
server-sent events (``data: {...}`` chunks, then ``data: [DONE]``; a last chunk with
``usage`` and no choices when ``stream_options.include_usage`` is set). The JSON follows
the openai package's types (``ChatCompletion``, ``ChatCompletionChunk``, ``Completion``,
``Model``).

Replies come from a queue, one per generation request (simonw/llm's MockModel pattern):
``enqueue("text")`` a reply, ``fail(503)`` an HTTP error before any token, ``break_off("some
words")`` a reply that stops mid-way (the connection dropped, or vLLM's in-stream error
event). Like vLLM it honours ``stop`` (the reply ends before the first stop string) and
``max_tokens`` (a token is one word with its trailing space). Every request body it
received is kept, in order, in ``requests``. An empty queue answers 500, so a test that
did not script a call sees it fail.

The server runs uvicorn in a background thread on a free port; ``tests/conftest.py``'s
``fake_model`` fixture shares one per session and empties it before each test.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rag.generation.vllm_server import free_port

MODEL = "fake-bagel"
MAX_MODEL_LEN = 4096
_TOKEN = re.compile(r"\s*\S+\s*|\s+")


class BrokenOff(Exception):
    """Raised inside a response on purpose: uvicorn then drops the connection mid-body."""


Responder = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Reply:
    """A text, or a function of the request body that writes it (a model that reads its prompt)."""

    text: str | Responder


@dataclass(frozen=True)
class Failure:
    status: int
    message: str


@dataclass(frozen=True)
class BreakOff:
    """``text`` is sent, then the stream ends without finishing: ``drop`` closes the
    connection mid-body, ``error_event`` sends vLLM's in-stream error chunk and [DONE]."""

    text: str
    how: Literal["drop", "error_event"]


Scripted = Reply | Failure | BreakOff


def tokens(text: str) -> list[str]:
    """The reply in stream pieces: each word with the spaces around it; joined, the text."""
    return _TOKEN.findall(text)


class FakeModelServer:
    def __init__(self, model: str = MODEL, max_model_len: int = MAX_MODEL_LEN) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []  # every generation request body, in order
        self.paths: list[str] = []  # the path each of them was posted to
        self.errors: list[Exception] = []  # what scripted responders raised
        self._queue: list[Scripted] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.created = int(time.time())

    # --- scripting -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *texts: str | Responder) -> None:
        """Replies for the next generation requests, one each, in order: a text, or a function
        that writes it from the request body (``prompt_of(body)`` is the prompt)."""
        with self._lock:
            self._queue.extend(Reply(text) for text in texts)

    def fail(
        self, status: int = 503, message: str = "the fake model server is failing", times: int = 1
    ) -> None:
        """The next ``times`` requests answer HTTP ``status`` with OpenAI's error body, before any token."""
        with self._lock:
            self._queue.extend(Failure(status, message) for _ in range(times))

    def break_off(self, text: str, how: Literal["drop", "error_event"] = "drop") -> None:
        """The next request gets ``text`` and then no end (see ``BreakOff``)."""
        with self._lock:
            self._queue.append(BreakOff(text, how))

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.paths.clear()
            self.errors.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next(self, path: str, body: dict[str, Any]) -> Scripted | None:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            return self._queue.pop(0) if self._queue else None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._server is not None:
            return
        logging.getLogger("uvicorn.error").addFilter(_HideBrokenOff())
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="fake-model-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake model server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None and self._thread is not None:
            server.should_exit = True
            self._thread.join(timeout=10)

    # --- the HTTP side -----------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
            ]
        )

    async def _models(self, _: Request) -> Response:
        card = {
            "id": self.model,
            "object": "model",
            "created": self.created,
            "owned_by": "vllm",
            "root": self.model,
            "parent": None,
            "max_model_len": self.max_model_len,
        }
        return JSONResponse({"object": "list", "data": [card]})

    async def _chat(self, request: Request) -> Response:
        return await self._generate(request, "chat")

    async def _completions(self, request: Request) -> Response:
        return await self._generate(request, "completion")

    async def _generate(self, request: Request, kind: Literal["chat", "completion"]) -> Response:
        body = await request.json()
        scripted = self._next(request.url.path, body)
        if scripted is None:
            scripted = Failure(500, "fake model server: no reply was scripted for this request")
        if isinstance(scripted, Failure):
            return _error(scripted.status, scripted.message)
        if body.get("model") != self.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        prompt_tokens = len(tokens(_prompt_text(body, kind)))
        id_ = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex
        if isinstance(scripted, BreakOff):
            pieces, finish = tokens(scripted.text), None
        else:
            try:
                text = scripted.text(body) if callable(scripted.text) else scripted.text
            except (
                Exception
            ) as exc:  # a responder's failed assertion: the test sees it (``errors``)
                self.errors.append(exc)
                return _error(500, f"fake model server: the scripted responder failed: {exc!r}")
            pieces, finish = _limited(text, body.get("stop"), body.get("max_tokens"))
        shape = _Shape(kind, id_, self.model, int(time.time()))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _events(shape, pieces, finish, prompt_tokens, usage, scripted),
                media_type="text/event-stream",
            )
        if isinstance(scripted, BreakOff):  # a body cut off: headers promise more than comes
            return _CutOffResponse(
                json.dumps(shape.whole("".join(pieces), "stop", prompt_tokens, len(pieces)))
            )
        return JSONResponse(
            shape.whole("".join(pieces), finish or "stop", prompt_tokens, len(pieces))
        )


@dataclass(frozen=True)
class _Shape:
    """OpenAI's JSON for one response: chat.completion(.chunk) or text_completion."""

    kind: Literal["chat", "completion"]
    id: str
    model: str
    created: int

    def _envelope(self, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "choices": choices, "system_fingerprint": None}  # fmt: skip

    def whole(
        self, text: str, finish: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        if self.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                      "tool_calls": []}, "logprobs": None, "finish_reason": finish}  # fmt: skip
            body = self._envelope("chat.completion", [choice])
        else:
            body = self._envelope(
                "text_completion",
                [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
            )
        body["usage"] = _usage(prompt_tokens, completion_tokens)
        return body

    def chunk(self, text: str | None, finish: str | None, first: bool = False) -> dict[str, Any]:
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text is not None:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return self._envelope("chat.completion.chunk", [choice])
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return self._envelope("text_completion", [choice])

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return {**self._envelope(obj, []), "usage": _usage(prompt_tokens, completion_tokens)}


async def _events(
    shape: _Shape, pieces: Sequence[str], finish: str | None, prompt_tokens: int, include_usage: bool,
    scripted: Scripted,
) -> AsyncIterator[str]:  # fmt: skip
    def data(payload: dict[str, Any]) -> str:
        if include_usage and "usage" not in payload:
            payload["usage"] = None  # OpenAI and vLLM send usage: null on every other chunk
        return f"data: {json.dumps(payload)}\n\n"

    if shape.kind == "chat":
        yield data(shape.chunk(None, None, first=True))  # the role, as vLLM and OpenAI start
    for piece in pieces:
        yield data(shape.chunk(piece, None))
    if isinstance(scripted, BreakOff):
        if scripted.how == "drop":
            raise BrokenOff("the fake model server drops the stream on purpose")
        # vLLM's way to report an error after the stream started (serving_chat.py)
        yield f"data: {json.dumps({'error': {'message': 'the fake model server failed mid-stream', 'type': 'InternalServerError', 'param': None, 'code': 500}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    yield data(shape.chunk(None, finish or "stop"))
    if include_usage:
        yield data(shape.usage_chunk(prompt_tokens, len(pieces)))
    yield "data: [DONE]\n\n"


class _CutOffResponse(Response):
    """A JSON body whose Content-Length promises more than is sent before the connection drops."""

    media_type = "application/json"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        payload = self.body[: len(self.body) // 2]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": payload, "more_body": True})
        raise BrokenOff("the fake model server drops the response on purpose")


class _HideBrokenOff(logging.Filter):
    """uvicorn logs every exception of the app; the ones thrown on purpose are noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], BrokenOff))


def _limited(
    text: str, stop: Sequence[str] | str | None, max_tokens: int | None
) -> tuple[list[str], str]:
    """What vLLM would send: the text up to the first stop string, at most max_tokens pieces."""
    finish = "stop"
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    pieces = tokens(text)
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces, finish = pieces[:max_tokens], "length"
    return pieces, finish


def prompt_of(body: dict[str, Any]) -> str:
    """The prompt a request carried: a completion's ``prompt``, or the last chat message."""
    if "messages" in body:
        return str(body["messages"][-1].get("content") or "")
    return str(body.get("prompt", ""))


def _prompt_text(body: dict[str, Any], kind: str) -> str:
    if kind == "completion":
        prompt = body.get("prompt", "")
        return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
    return "\n".join(str(m.get("content") or "") for m in body.get("messages", []))


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


def _error(status: int, message: str, kind: str = "InternalServerError") -> JSONResponse:
    """OpenAI's error body (vLLM sends the same fields)."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status)
