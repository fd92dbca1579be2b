"""Keeps a prompt inside the generator's context window.

Tokens are counted with the generator's own tokenizer when one is available
locally (the embedded model), else estimated conservatively from characters.
The lowest-ranked blocks are dropped first.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.types import PromptBlock

logger = logging.getLogger(__name__)

TokenCount = Callable[[str], int]
CHAT_TEMPLATE_RESERVE = 64  # role markers and the system turn's wrapper
CHARS_PER_TOKEN_LOWER_BOUND = 3.0
TOKEN_COUNT_CACHE = 4096  # rendered blocks (a few KB each)


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN_LOWER_BOUND) + 1


def tokenizer_counter(tokenizer_dir: Path | None) -> TokenCount:
    if tokenizer_dir is None or not (tokenizer_dir / "tokenizer.json").exists():
        return estimate_tokens
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    # The same blocks come back for related questions: each is tokenized once (a few ms).
    @functools.lru_cache(maxsize=TOKEN_COUNT_CACHE)
    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    return count


@dataclass(frozen=True)
class ContextBudget:
    """The model's window split between prompt and answer. Immutable: a service that learns
    the served model's window holds a replaced copy, never changes one it shares."""

    count_tokens: TokenCount
    context_length: int
    answer_tokens: int

    @property
    def prompt_tokens(self) -> int:
        return self.context_length - self.answer_tokens - CHAT_TEMPLATE_RESERVE

    def fit(
        self,
        blocks: Sequence[PromptBlock],
        render_block: Callable[[PromptBlock], str],
        fixed: str,
        reserved_tokens: int = 0,
    ) -> tuple[list[PromptBlock], list[PromptBlock]]:
        """The highest-ranked blocks that fit beside ``fixed`` text (and ``reserved_tokens``
        taken by earlier turns of a conversation), and the blocks left out.

        Block costs add up (each block is joined by one newline), so each is
        tokenized once; the prefix in rank order is kept.
        """
        used = self.count_tokens(fixed) + reserved_tokens
        for position, block in enumerate(blocks):
            used += self.count_tokens(render_block(block)) + 1
            if used > self.prompt_tokens:
                return list(blocks[:position]), list(blocks[position:])
        return list(blocks), []
