"""An answer's sentences embedded while the model is still writing it.

Attribution compares each sentence of the answer with the sent passages' sentences. Embedded
after the last token, a long answer's sentences cost the user tens of milliseconds more on
two cores (issue 16). Here each sentence is embedded as soon as the next one begins, in the
background while the model writes, so that attribution finds all but the last one done.
What attribution computes does not change: a sentence's vector is the encoder's vector of
the same text (it does not depend on its batch), looked up by that text.
"""

from __future__ import annotations

import asyncio
import logging

import anyio

from rag.answering.attribution import sentences
from rag.answering.citations import parse_answer
from rag.protocols import Embedder, Vectors

logger = logging.getLogger(__name__)

# A token holding one of these may have ended a sentence or a paragraph.
SENTENCE_ENDS = frozenset(".!?;:\n\u3002\uff01\uff1f")


class AnswerSentenceEmbedder:
    """Fed the answer token by token; embeds every finished sentence once, a batch at a time."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._parts: list[str] = []
        self._vectors: dict[str, Vectors] = {}
        self._running: asyncio.Task[None] | None = None

    def add(self, token: str) -> None:
        self._parts.append(token)
        if SENTENCE_ENDS.isdisjoint(token):
            return
        if self._running is None or self._running.done():  # else it sees the new ones next
            self._running = asyncio.create_task(self._embed_finished())

    def _finished_and_new(self) -> list[str]:
        body = parse_answer("".join(self._parts).strip()).body
        finished = sentences(body)[:-1]  # the last one may still grow
        return [sentence for sentence in dict.fromkeys(finished) if sentence not in self._vectors]

    async def _embed_finished(self) -> None:
        while new := self._finished_and_new():
            try:
                vectors = await anyio.to_thread.run_sync(self._embedder.embed, new)
            except Exception:  # attribution embeds whatever is missing itself
                logger.warning(
                    "embedding an answer's sentences as it streamed failed", exc_info=True
                )
                return
            self._vectors.update(zip(new, vectors, strict=True))

    async def vectors(self) -> dict[str, Vectors]:
        """The sentence vectors embedded so far, once the batches under way are done."""
        if self._running is not None:
            await asyncio.shield(self._running)
        return dict(self._vectors)
