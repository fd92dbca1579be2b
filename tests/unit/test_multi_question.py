from __future__ import annotations

from rag.generation.multi_question import interleave, numbered_questions, split_numbered_answers
from rag.generation.prompts import build_blocks, contextual_prompt
from rag.types import RetrievedChunk


def test_questions_are_numbered_in_one_instruction_block() -> None:
    text = numbered_questions(["What is A?", " What is B? "])
    prompt = contextual_prompt(
        build_blocks([RetrievedChunk(1, 1, 1.0, "A is 1. B is 2.", {})]), text
    )
    assert prompt.count("BEGININSTRUCTION") == 1
    assert (
        "BEGININSTRUCTION\n1. What is A?\n2. What is B?\nAnswer each numbered question in order"
        in prompt
    )


def test_numbered_answers_are_split_back() -> None:
    body = "1. A is one.\n2) B is two,\nover two lines.\n**3:** C is three."
    assert split_numbered_answers(body, 3) == [
        "A is one.",
        "B is two,\nover two lines.",
        "C is three.",
    ]


def test_missing_answers_stay_missing() -> None:
    assert split_numbered_answers("2. Only the second.", 3) == [None, "Only the second.", None]
    assert split_numbered_answers("No numbers at all.", 2) == [None, None]


def test_interleave_takes_turns_and_drops_repeats() -> None:
    def chunk(i: int) -> RetrievedChunk:
        return RetrievedChunk(i, i, 1.0, str(i), {})

    merged = interleave([[chunk(1), chunk(2), chunk(3)], [chunk(2), chunk(4)]], limit=4)
    assert [c.chunk_id for c in merged] == [1, 2, 4, 3]


def test_a_bold_answer_keeps_its_bold_and_a_bold_number_loses_it() -> None:
    body = "1. **The tower is 32 metres tall.**\n**2.** Apples ripen in autumn."
    assert split_numbered_answers(body, 2) == [
        "**The tower is 32 metres tall.**",
        "Apples ripen in autumn.",
    ]
