"""Follow-up questions: the earlier turns of a conversation, a standalone question, a budget.

Conversation state is the client's: each request carries its earlier turns, so replicas
stay stateless. The turns are used twice:

- **retrieval** searches a standalone question: the model rewrites the follow-up
  (``condensation_prompt``); when it gives nothing usable (empty, a refusal, an answer
  instead of a question, a runaway text), the last user turn and the follow-up are
  searched together (``fallback_question``);
- **generation** sees the earlier turns as chat messages before the final user turn (the
  BEGININPUT blocks), the newest that fit ``max_history_tokens``; the oldest are dropped
  first, a question with its answer at a time, so that roles keep alternating
  (llama-2's template refuses anything else).

Every turn's text goes through ``neutralize_delimiters``: an earlier turn can no more open a
BEGININPUT block than the question can.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rag.generation.abstention import is_refusal
from rag.text.delimiters import neutralize_delimiters
from rag.types import Turn

CondensationMethod = Literal["none", "model", "fallback"]
TokenCount = Callable[[str], int]

# Role markers and separators a chat template wraps around one message (SmolLM2's ChatML
# adds 5 tokens, llama-2's [INST] pair about 8).
TURN_OVERHEAD_TOKENS = 8
CONDENSE_MAX_TOKENS = 64
# A standalone question longer than this is not a rewritten question but a runaway answer.
MAX_STANDALONE_CHARS = 400
MAX_TRANSCRIPT_TURN_CHARS = 1000

CONDENSE_INSTRUCTION = (
    "Rewrite the follow-up question so that it can be understood without the conversation: "
    'replace words such as "it", "they", "there" and "that" with what they refer to. '
    "Do not answer it. Write only the rewritten question."
)
_PREFIX = re.compile(r"^\s*(standalone|rewritten)?\s*(question)?\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’`"
# A rewrite is a question: it ends with a question mark or opens like one. A small model
# sometimes answers instead ("The lake was 1.5 km deep."), which only looks usable.
_QUESTION_OPENING = re.compile(
    r"^(how|what|when|where|who|whom|whose|which|why|is|are|was|were|do|does|did|can|could|"
    r"will|would|should|shall|has|have|had|may|might|must|in|on|at|for|from|to|by|with)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Condensation:
    """What retrieval searches for a question asked in a conversation."""

    question: str
    method: CondensationMethod  # none: no earlier turns; model: rewritten; fallback: joined
    model_output: str = ""


@dataclass(frozen=True)
class FittedHistory:
    turns: tuple[Turn, ...]  # oldest first, alternating user/assistant, ending with assistant
    dropped: int  # earlier turns left out, oldest first (after joining turns of one role)
    tokens: int  # what the kept turns cost in the prompt


def alternating(history: Sequence[Turn]) -> list[Turn]:
    """Consecutive turns of one role joined, leading assistant and trailing user turns
    dropped: the shape every chat template accepts before the final user turn."""
    merged: list[Turn] = []
    for turn in history:
        content = neutralize_delimiters(turn.content.strip())
        if not content:
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, f"{merged[-1].content}\n\n{content}")
        else:
            merged.append(Turn(turn.role, content))
    while merged and merged[0].role != "user":
        merged.pop(0)
    while merged and merged[-1].role != "assistant":
        merged.pop()
    return merged


def fit_history(
    history: Sequence[Turn], max_tokens: int, count_tokens: TokenCount
) -> FittedHistory:
    """The newest question-and-answer pairs whose cost stays within ``max_tokens``."""
    turns = alternating(history)
    kept: list[Turn] = []
    used = 0
    for start in range(len(turns) - 2, -1, -2):
        pair = turns[start : start + 2]
        cost = sum(count_tokens(turn.content) + TURN_OVERHEAD_TOKENS for turn in pair)
        if used + cost > max_tokens:
            break
        kept[:0] = pair
        used += cost
    return FittedHistory(tuple(kept), len(turns) - len(kept), used)


def transcript(turns: Sequence[Turn]) -> str:
    """The conversation as the condensation prompt shows it; long answers are cut."""
    lines = []
    for turn in turns:
        text = " ".join(neutralize_delimiters(turn.content).split())
        if len(text) > MAX_TRANSCRIPT_TURN_CHARS:
            text = text[: MAX_TRANSCRIPT_TURN_CHARS - 1] + "…"
        lines.append(f"{'User' if turn.role == 'user' else 'Assistant'}: {text}")
    return "\n".join(lines)


def condensation_prompt(turns: Sequence[Turn], question: str) -> str:
    """The user turn that asks the model for a standalone question."""
    follow_up = " ".join(neutralize_delimiters(question).split())
    return (
        f"{CONDENSE_INSTRUCTION}\n\nConversation:\n{transcript(turns)}\n\n"
        f"Follow-up question: {follow_up}\nStandalone question:"
    )


def standalone_from(output: str) -> str | None:
    """The question in the model's output, or None when it is not usable."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return None
    text = _PREFIX.sub("", lines[0]).strip().strip(_QUOTES).strip()
    if not re.search(r"\w{2}", text) or len(text) > MAX_STANDALONE_CHARS or is_refusal(text):
        return None
    if not (text.endswith("?") or _QUESTION_OPENING.match(text)):
        return None
    return neutralize_delimiters(text)


def fallback_question(turns: Sequence[Turn], question: str) -> str:
    """The last user turn and the follow-up, searched together."""
    earlier = next((turn.content for turn in reversed(turns) if turn.role == "user"), "")
    return " ".join(f"{earlier} {question}".split())


def condensed(turns: Sequence[Turn], question: str, model_output: str) -> Condensation:
    standalone = standalone_from(model_output)
    if standalone is None:
        return Condensation(fallback_question(turns, question), "fallback", model_output)
    return Condensation(standalone, "model", model_output)


def llama2_conversation_prompt(user: str, system: str | None, history: Sequence[Turn]) -> str:
    """llama-2's multi-turn form, for raw completion servers (the server adds the first BOS):
    ``[INST] <<SYS>>…<</SYS>>\\n\\nq1 [/INST] a1 </s><s>[INST] q2 [/INST]``."""
    exchanges = [(turns[0].content, turns[1].content) for turns in _pairs(history)]
    questions = [question for question, _ in exchanges] + [user]
    if system:
        questions[0] = f"<<SYS>>\n{system}\n<</SYS>>\n\n{questions[0]}"
    parts = [
        f"[INST] {question} [/INST] {answer} </s><s>"
        for question, (_, answer) in zip(questions, exchanges)
    ]
    return "".join(parts) + f"[INST] {questions[-1]} [/INST]"


def _pairs(history: Sequence[Turn]) -> list[tuple[Turn, Turn]]:
    turns = alternating(history)
    return [(turns[i], turns[i + 1]) for i in range(0, len(turns) - 1, 2)]


@dataclass(frozen=True)
class ConversationUse:
    """How an answer used its conversation (reported with the answer)."""

    standalone_question: str | None = None  # what retrieval searched, when there were earlier turns
    condensation: CondensationMethod = "none"
    history_turns_used: int = 0  # earlier turns sent to the model
    dropped_turns: int = 0  # earlier turns left out to fit the budget, oldest first


@dataclass(frozen=True)
class GenerationOptions:
    """What a caller may change about one generation, within the service's limits."""

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
