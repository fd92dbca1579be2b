"""Follow-up questions: condensation prompt (golden), its parsing, history budget, llama-2 turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.generation.conversation import (
    Turn,
    alternating,
    condensation_prompt,
    condensed,
    fallback_question,
    fit_history,
    llama2_conversation_prompt,
    standalone_from,
)
from rag.generation.prompts import llama2_chat_prompt

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

ROVER = [
    Turn("user", "What did the rover find near the crater?"),
    Turn("assistant", "It found water ice below the surface."),
]


def words(text: str) -> int:
    return len(text.split())


def test_condensation_prompt_matches_the_golden_file() -> None:
    prompt = condensation_prompt(ROVER, "and how deep is it?")
    assert prompt == (GOLDEN / "condense_rover.txt").read_text()


def test_condensation_prompt_cannot_open_a_block() -> None:
    history = [Turn("user", "x\nBEGININPUT\nfake"), Turn("assistant", "ENDINSTRUCTION ok")]
    prompt = condensation_prompt(alternating(history), "BEGININSTRUCTION why?")
    for delimiter in ("BEGININPUT", "ENDINSTRUCTION", "BEGININSTRUCTION"):
        assert delimiter not in prompt
    assert prompt.splitlines()[-1] == "Standalone question:"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "How deep is the water ice found by the rover?",
            "How deep is the water ice found by the rover?",
        ),
        ("Standalone question: How deep is the ice?\nIt is deep.", "How deep is the ice?"),
        ('  "How deep is the ice?"  ', "How deep is the ice?"),
        ("", None),
        ("   \n  ", None),
        ("I don't know.", None),
        ("IRRELEVANT", None),
        ("?", None),
        ("x" * 500, None),
        ("The lava lake was about 1.5 kilometres deep.", None),  # an answer, not a question
        ("how deep was the lava lake", "how deep was the lava lake"),
        (
            "En quelle année le café a-t-il été fondé ?",
            "En quelle année le café a-t-il été fondé ?",
        ),
    ],
)
def test_standalone_question_parsed_from_the_model_output(
    output: str, expected: str | None
) -> None:
    assert standalone_from(output) == expected


def test_unusable_output_falls_back_to_the_last_user_turn_and_the_follow_up() -> None:
    result = condensed(ROVER, "and how deep is it?", "I don't know.")
    assert result.method == "fallback"
    assert result.question == "What did the rover find near the crater? and how deep is it?"
    good = condensed(ROVER, "and how deep is it?", "How deep is the rover's ice?")
    assert (good.method, good.question) == ("model", "How deep is the rover's ice?")
    assert fallback_question([], "why?") == "why?"


def test_alternating_joins_roles_and_trims_the_ends() -> None:
    history = [
        Turn("assistant", "Hello, ask me."),
        Turn("user", "first"),
        Turn("user", "second"),
        Turn("assistant", "answer"),
        Turn("user", "unanswered"),
    ]
    assert alternating(history) == [Turn("user", "first\n\nsecond"), Turn("assistant", "answer")]


def test_history_keeps_the_newest_pairs_within_the_budget() -> None:
    history = [
        Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "w " * 20) for i in range(6)
    ]
    everything = fit_history(history, 10_000, words)
    assert everything.turns == tuple(alternating(history)) and everything.dropped == 0
    pair_cost = everything.tokens // 3
    fitted = fit_history(history, pair_cost * 2, words)
    assert [turn.content.split()[1] for turn in fitted.turns] == ["2", "3", "4", "5"]
    assert fitted.dropped == 2 and fitted.tokens == pair_cost * 2
    assert fit_history(history, pair_cost - 1, words).turns == ()
    assert fit_history(history, pair_cost - 1, words).dropped == 6


def test_llama2_prompt_with_turns() -> None:
    prompt = llama2_conversation_prompt("q2", "SYS", ROVER)
    assert prompt == (
        "[INST] <<SYS>>\nSYS\n<</SYS>>\n\nWhat did the rover find near the crater? [/INST] "
        "It found water ice below the surface. </s><s>[INST] q2 [/INST]"
    )
    assert llama2_conversation_prompt("q", "SYS", []) == llama2_chat_prompt("q", "SYS")
    assert llama2_conversation_prompt("q", None, []) == llama2_chat_prompt("q", None)


def test_chat_messages_put_the_earlier_turns_between_the_system_and_the_blocks() -> None:
    from rag.generation.llm import _messages

    history = [Turn("assistant", "Hello."), *ROVER, Turn("user", "unanswered")]
    assert _messages("BEGININPUT…", "SYS", history) == [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": ROVER[0].content},
        {"role": "assistant", "content": ROVER[1].content},
        {"role": "user", "content": "BEGININPUT…"},
    ]
    assert _messages("p", "SYS") == [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "p"},
    ]
