"""Summaries are cut to their word target plus a third, at a sentence boundary."""

from __future__ import annotations

from rag.answering.summarization import within_target


def test_a_summary_within_the_target_is_left_alone() -> None:
    text = "The ferry crosses in 47 minutes. It carries 212 passengers."
    assert within_target(text, 10) == text


def test_an_overlong_summary_ends_after_its_last_whole_sentence_within_the_limit() -> None:
    text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen fourteen fifteen."
    assert (
        within_target(text, 8) == "One two three four five. Six seven eight nine ten."
    )  # limit 10 words
    assert len(within_target(text, 8).split()) <= 8 * 4 / 3


def test_a_single_overlong_sentence_is_cut_at_the_word_limit() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    assert within_target(text, 30).split() == [f"w{i}" for i in range(40)]
