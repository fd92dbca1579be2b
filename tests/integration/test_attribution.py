"""Each answer sentence finds the sent sentence that supports it."""

from __future__ import annotations

import pytest

from rag.answering.attribution import attribute, sentences
from rag.generation.prompts import build_blocks
from rag.protocols import Embedder
from rag.types import RetrievedChunk

pytestmark = pytest.mark.integration


def test_answer_sentences_map_to_their_supporting_sentences(embedder: Embedder) -> None:
    blocks = build_blocks([
        RetrievedChunk(1, 10, 0.9, "Kilauea's summit eruption resumed on September 10, 2023. Lava fountains reached 50 metres.", {}),
        RetrievedChunk(2, 20, 0.8, "The rover's radar found ice two metres below the surface. The layer is thirty metres thick.", {}),
    ])  # fmt: skip
    answer = "The ice layer is about thirty metres thick. Kilauea started erupting again on 10 September 2023."
    support = attribute(answer, blocks, embedder)
    assert [s.chunk_id for s in support] == [2, 1]
    assert support[0].source_sentence == "The layer is thirty metres thick."
    assert support[1].source_sentence.startswith("Kilauea's summit eruption resumed")
    assert all(s.score > 0.6 for s in support)
    unrelated = attribute("Penguins cannot fly.", blocks, embedder)[0]
    assert unrelated.score < support[0].score


def test_nothing_to_attribute() -> None:
    assert sentences("") == []
    assert attribute("", [], None) == []  # type: ignore[arg-type]
