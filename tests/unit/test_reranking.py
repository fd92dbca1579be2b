"""The reranker changes scores and order only: the prompt still joins neighbours once."""

from __future__ import annotations

from collections.abc import Sequence

from rag.generation.prompts import build_blocks, contextual_prompt
from rag.retrieval.reranking import CrossEncoderReranker
from rag.types import RetrievedChunk

DOCUMENT = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."


class ScriptedCrossEncoder:
    """Stands in for the cross-encoder model (none is installable here): a fixed score per text."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def predict(self, pairs: Sequence[tuple[str, str]], **_: object) -> list[float]:
        return [self.scores[text] for _, text in pairs]


def chunk(chunk_id: int, ordinal: int, start: int, end: int, score: float) -> RetrievedChunk:
    text = DOCUMENT[start:end]
    return RetrievedChunk(
        chunk_id, 7, score, text, {"title": "t"}, ordinal=ordinal, start_char=start, end_char=end
    )


def test_reranked_neighbours_reach_the_prompt_with_their_overlap_once() -> None:
    first, second = chunk(1, 0, 0, 30, 0.9), chunk(2, 1, 18, len(DOCUMENT), 0.4)
    reranker = CrossEncoderReranker("unused")
    reranker._model = ScriptedCrossEncoder({first.text: 0.1, second.text: 0.8})  # type: ignore[assignment]

    reranked = reranker.rerank("q", [first, second], top_k=2)

    assert [(c.chunk_id, c.score) for c in reranked] == [(2, 0.8), (1, 0.1)]
    assert [(c.start_char, c.end_char, c.ordinal) for c in reranked] == [
        (18, len(DOCUMENT), 1),
        (0, 30, 0),
    ]
    blocks = build_blocks(reranked)
    assert len(blocks) == 1 and blocks[0].text == DOCUMENT
    assert blocks[0].chunks[0].chunk_ids == (1, 2)
    assert contextual_prompt(blocks, "q").count("Delta epsil") == 1
