from __future__ import annotations

import pytest

from rag.generation.abstention import is_refusal


@pytest.mark.parametrize(
    "text",
    ["IRRELEVANT", "DO NOT KNOW", "SKIP", "I don't know.", "I don’t know",
     "The passage does not appear to provide an answer to the question."],
)  # fmt: skip
def test_trained_refusals_are_recognised(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Blueberries are green.",
        "Skip the first step, then knead.",
        "I don't know why, but it is 5.",
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)
