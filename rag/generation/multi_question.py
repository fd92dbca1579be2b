"""Several questions in one instruction block, as the format allows, answered per question.

The questions are numbered in the instruction and the model is asked to number its
answers the same way; the answer text is split back on those numbers. An answer the
model did not give comes back as None rather than being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import RetrievedChunk

MAX_QUESTIONS = 10
# "**3.** text" loses its bold number; "3. **text**" keeps its bold answer (closing ** only
# after an opening one).
_NUMBERED = re.compile(
    r"^\s*(?P<bold>\*\*)?(?:answer\s*)?(?P<number>\d{1,2})[.):]\s*(?(bold)\*\*)\s*",
    re.IGNORECASE | re.MULTILINE,
)


def numbered_questions(questions: Sequence[str]) -> str:
    lines = [f"{number}. {question.strip()}" for number, question in enumerate(questions, start=1)]
    lines.append("Answer each numbered question in order, starting each answer with its number.")
    return "\n".join(lines)


def split_numbered_answers(body: str, count: int) -> list[str | None]:
    answers: list[str | None] = [None] * count
    marks = [(int(m.group("number")), m.start(), m.end()) for m in _NUMBERED.finditer(body)]
    for position, (number, _, end) in enumerate(marks):
        stop = marks[position + 1][1] if position + 1 < len(marks) else len(body)
        if 1 <= number <= count and answers[number - 1] is None:
            text = body[end:stop].strip()
            answers[number - 1] = text or None
    if count == 1 and answers[0] is None and body.strip():
        answers[0] = body.strip()
    return answers


def interleave(rankings: Sequence[Sequence[RetrievedChunk]], limit: int) -> list[RetrievedChunk]:
    """Round-robin over the per-question rankings, each chunk once, best ranks first."""
    merged: list[RetrievedChunk] = []
    seen: set[int] = set()
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank].chunk_id not in seen:
                seen.add(ranking[rank].chunk_id)
                merged.append(ranking[rank])
    return merged[:limit]
