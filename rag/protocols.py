"""The roles the pipeline's stages are written against, as ``Protocol``\\ s.

Constructors are cheap; heavy loading happens in an idempotent ``warm_up`` (haystack's
convention), so building the service loads nothing until it starts. Any embedder backend
(torch, ONNX Runtime, OpenVINO) and any OpenAI-compatible server client satisfy these, and
so do the tests' fakes, which is what lets a fake stand in without touching the code under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from rag.types import Generation, StreamReport, Turn

Vectors = npt.NDArray[np.float32]


class TokenCounter(Protocol):
    def token_lengths(self, texts: list[str]) -> list[int]: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]: ...


class Embedder(TokenCounter, Protocol):
    """Text to L2-normalised float32 vectors (cosine = inner product)."""

    @property
    def identity(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def warm_up(self) -> None: ...

    def embed(self, texts: list[str]) -> Vectors: ...


class LLM(Protocol):
    """A chat/completion model behind an OpenAI-compatible server."""

    async def warm_up(self) -> None: ...

    async def model(self) -> str: ...

    async def context_length(self, default: int) -> int: ...

    async def ready(self) -> bool: ...

    async def generate(
        self,
        prompt: str,
        system: str | None,
        max_tokens: int,
        temperature: float,
        history: Sequence[Turn] = (),
        stop: Sequence[str] = (),
    ) -> Generation: ...

    def stream(
        self,
        prompt: str,
        system: str | None,
        max_tokens: int,
        temperature: float,
        history: Sequence[Turn] = (),
        stop: Sequence[str] = (),
        report: StreamReport | None = None,
    ) -> AsyncIterator[str]: ...

    async def close(self) -> None: ...
