"""One client for every OpenAI-compatible server: the embedded vLLM or an external one.

``chat`` sends the prompt as the user turn through ``/v1/chat/completions``
(the server applies the model's own chat template); ``completion`` wraps it in
llama-2's ``[INST]`` form itself for servers without a template.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from rag.config import PromptMode
from rag.errors import LLMResponseError, LLMUnavailableError
from rag.generation.conversation import alternating, llama2_conversation_prompt
from rag.generation.prompts import (
    BEGINCONTEXT,
    BEGININPUT,
    BEGININSTRUCTION,
    ENDINSTRUCTION,
    llama2_chat_prompt,
)
from rag.telemetry import count_tokens, stage
from rag.types import Generation, StreamReport, Turn

logger = logging.getLogger(__name__)

# An answer never holds a delimiter: a model that writes one has started a new prompt.
# (The OpenAI API takes at most four stop sequences.)
CHAT_STOP_SEQUENCES = [BEGININPUT, BEGINCONTEXT, BEGININSTRUCTION, ENDINSTRUCTION]
COMPLETION_STOP_SEQUENCES = ["</s>", "[INST]", BEGININPUT, BEGININSTRUCTION]


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str = "EMPTY",
        timeout_s: float = 120.0,
        max_retries: int = 1,
        mode: PromptMode = "chat",
    ) -> None:
        self.base_url = base_url
        self._model = model
        self._context_length: int | None = None
        self.mode = mode
        self.max_retries = max_retries
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )

    async def model(self) -> str:
        """The configured model, or the one the server serves."""
        if self._model is None:
            try:
                models = await self._client.models.list()
            except openai.APIError as exc:
                raise _translate(exc) from exc
            if not models.data:
                raise LLMUnavailableError(f"the server at {self.base_url} serves no model")
            self._model = models.data[0].id
        return self._model

    async def context_length(self, default: int) -> int:
        """The served model's context window, as vLLM reports it (``max_model_len``)."""
        if self._context_length is None:
            try:
                models = await self._client.models.list()
            except openai.APIError as exc:
                raise _translate(exc) from exc
            model = await self.model()
            reported = next(
                (getattr(m, "max_model_len", None) for m in models.data if m.id == model), None
            )
            self._context_length = int(reported) if reported else default
        return self._context_length

    async def warm_up(self) -> None:
        """Learns the served model now, not on the first question."""
        await self.model()

    async def ready(self) -> bool:
        try:
            await self._client.with_options(timeout=5.0, max_retries=0).models.list()
        except openai.APIError:
            return False
        return True

    async def _create(
        self,
        prompt: str,
        system: str | None,
        max_tokens: int,
        temperature: float,
        stream: bool,
        history: Sequence[Turn] = (),
        stop: Sequence[str] = (),
        stream_interval: int = 0,
    ) -> Any:
        """One request in the configured prompt mode; the caller translates API errors.
        ``history``: earlier turns of a conversation, sent before ``prompt``; ``stream_interval``:
        vLLM's tokens per streamed chunk (a vLLM extension, not sent when 0)."""
        extra_body = {"stream_interval": stream_interval} if stream_interval else None
        model = await self.model()
        if self.mode == "completion":
            text = (
                llama2_conversation_prompt(prompt, system, history)
                if history
                else llama2_chat_prompt(prompt, system)
            )
            return await self._client.completions.create(
                model=model,
                prompt=text,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=[*COMPLETION_STOP_SEQUENCES, *stop],
                stream=stream,
                **_usage_in_stream(stream),
                extra_body=extra_body,
            )
        return await self._client.chat.completions.create(
            model=model,
            messages=_messages(prompt, system, history),
            max_tokens=max_tokens,
            temperature=temperature,
            stop=[*CHAT_STOP_SEQUENCES, *stop],
            stream=stream,
            **_usage_in_stream(stream),
            extra_body=extra_body,
        )

    async def generate(
        self,
        prompt: str,
        system: str | None,
        max_tokens: int,
        temperature: float,
        history: Sequence[Turn] = (),
        stop: Sequence[str] = (),
    ) -> Generation:
        try:
            with stage("generate"):
                response = await self._create(
                    prompt, system, max_tokens, temperature, False, history, stop
                )
        except openai.APIError as exc:
            raise _translate(exc) from exc
        choice = response.choices[0]
        text = choice.text if self.mode == "completion" else choice.message.content
        usage = response.usage
        if usage:
            count_tokens(usage.prompt_tokens, usage.completion_tokens)
        return Generation(
            text=(text or "").strip(),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )

    async def stream(
        self,
        prompt: str,
        system: str | None,
        max_tokens: int,
        temperature: float,
        history: Sequence[Turn] = (),
        stop: Sequence[str] = (),
        report: StreamReport | None = None,
        stream_interval: int = 0,
    ) -> AsyncIterator[str]:
        """The answer's pieces as the model writes them; ``stream_interval``: see ``_create``."""
        report = report if report is not None else StreamReport()
        try:
            with stage("generate"):
                parts = await self._create(
                    prompt, system, max_tokens, temperature, True, history, stop, stream_interval
                )
                async for part in parts:
                    if part.usage:
                        count_tokens(part.usage.prompt_tokens, part.usage.completion_tokens)
                        report.prompt_tokens = part.usage.prompt_tokens
                        report.completion_tokens = part.usage.completion_tokens
                    if not part.choices:
                        continue
                    choice = part.choices[0]
                    report.finish_reason = choice.finish_reason or report.finish_reason
                    token = choice.text if self.mode == "completion" else choice.delta.content
                    if token:
                        yield token
        except openai.APIError as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        await self._client.close()


def _usage_in_stream(stream: bool) -> dict[str, Any]:
    """Ask for token usage in the last chunk of a stream (vLLM and OpenAI support it)."""
    return {"stream_options": {"include_usage": True}} if stream else {}


def _messages(
    prompt: str, system: str | None, history: Sequence[Turn] = ()
) -> list[ChatCompletionMessageParam]:
    # Always a system turn: bagel's template drops [INST] without one.
    messages: list[ChatCompletionMessageParam] = (
        [{"role": "system", "content": system}] if system else []
    )
    for turn in alternating(history):
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.content})
        else:
            messages.append({"role": "assistant", "content": turn.content})
    return [*messages, {"role": "user", "content": prompt}]


def _translate(exc: openai.APIError) -> Exception:
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return LLMUnavailableError(f"the model server is unreachable: {exc}")
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return LLMUnavailableError(f"the model server failed ({exc.status_code}): {exc.message}")
    return LLMResponseError(f"the model server refused the request: {exc}")
