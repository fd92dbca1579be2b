"""Parsing the model's citation trailers and matching them to the blocks sent."""

from __future__ import annotations

import pytest

from rag.answering.citations import match_citations, parse_answer
from rag.generation.prompts import build_blocks
from rag.types import RetrievedChunk


def blocks():  # type: ignore[no-untyped-def]
    return build_blocks(
        [
            RetrievedChunk(
                1,
                10,
                0.9,
                "Blueberries are green.",
                {"date": "2021-01-01", "url": "https://web.site/123"},
            ),
            RetrievedChunk(
                2,
                20,
                0.8,
                "Kilauea erupted.",
                {
                    "title": "Kilauea report",
                    "url": "https://v.example/k",
                    "source": "/docs/volcano.md",
                },
            ),
            RetrievedChunk(
                3,
                20,
                0.7,
                "More on Kilauea.",
                {
                    "title": "Kilauea report",
                    "url": "https://v.example/k",
                    "source": "/docs/volcano.md",
                },
            ),
        ]
    )


def cited_chunks(answer: str) -> tuple[list[int], int]:
    parsed = parse_answer(answer)
    citations, unverified = match_citations(parsed.cited_groups, blocks())
    return [c.chunk_ids[0] for c in citations], len(unverified)


def test_model_card_answer() -> None:
    answer = "Blueberries are now green.\nSource:\ndate: 2021-01-01\nurl: https://web.site/123"
    parsed = parse_answer(answer)
    assert parsed.body == "Blueberries are now green."
    assert parsed.cited_groups == ((("date", "2021-01-01"), ("url", "https://web.site/123")),)
    assert cited_chunks(answer) == ([1], 0)


@pytest.mark.parametrize(
    "label", ["Source:", "Sources:", "Reference(s):", "References:", "Reference:", "**Sources:**"]
)
def test_every_trained_trailer_label_is_recognised(label: str) -> None:
    assert cited_chunks(f"Green.\n{label}\nurl: https://web.site/123") == ([1], 0)


def test_several_blocks_separated_by_blank_lines_or_numbering() -> None:
    blank = "Both.\nReference(s):\ndate: 2021-01-01\nurl: https://web.site/123\n\ntitle: Kilauea report\nurl: https://v.example/k"
    numbered = "Both.\nSources:\n1. url: https://web.site/123\n2. title: Kilauea report"
    # Kilauea's two chunks share their metadata, so a citation of it names both.
    assert cited_chunks(blank) == ([1, 2, 3], 0)
    assert cited_chunks(numbered) == ([1, 2, 3], 0)


def test_repeated_key_starts_a_new_group() -> None:
    answer = "x\nSource:\nurl: https://web.site/123\nurl: https://v.example/k"
    assert cited_chunks(answer) == ([1, 2, 3], 0)


def test_paraphrased_values_still_match() -> None:
    answer = "x\nSource: web.site/123/"
    assert cited_chunks(answer) == ([1], 0)


def test_invented_source_is_unverified_and_never_a_citation() -> None:
    answer = (
        "x\nSource:\nurl: https://evil.example/fake\n\ndate: 2021-01-01\nurl: https://web.site/123"
    )
    assert cited_chunks(answer) == ([1], 1)


def test_mixed_group_with_one_false_line_is_unverified() -> None:
    answer = "x\nSource:\ndate: 1999-09-09\nurl: https://web.site/123"
    assert cited_chunks(answer) == ([], 1)


def test_answer_without_trailer_has_no_citations() -> None:
    parsed = parse_answer("Just an answer.")
    assert parsed.body == "Just an answer." and parsed.cited_groups == ()


def test_a_bare_trailer_wins_over_a_cited_source_metadata_line() -> None:
    answer = "Kilauea erupted.\nSource:\ntitle: Kilauea report\nsource: /docs/volcano.md"
    parsed = parse_answer(answer)
    assert parsed.body == "Kilauea erupted."
    assert cited_chunks(answer) == ([2, 3], 0)
