"""Recognises the refusals bagel was trained to give when the context lacks the answer."""

from __future__ import annotations

import re

TRAINED_REFUSALS = (
    "irrelevant",
    "do not know",
    "skip",
    "i don't know",
    "i do not know",
    "the passage does not appear to provide an answer to the question",
)
_REFUSAL_PREFIXES = (
    "the passage does not appear to provide",
    "the provided context does not",
    "the context does not contain",
)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower().replace("’", "'")).split())


def is_refusal(answer: str) -> bool:
    normalized = _normalize(answer)
    return normalized in TRAINED_REFUSALS or normalized.startswith(_REFUSAL_PREFIXES)
