"""Prompts in the BEGININPUT/BEGINCONTEXT format bagel was trained on.

The format is the one on the model card of ``jondurbin/bagel-8x7b-v0.2`` ("contextual
question answering"; tests/golden/ pins it byte for byte): one block per source with its metadata as ``key: value``
lines, then one instruction block. Delimiters stand alone on their lines and
are joined by single newlines. Nothing that comes from a document or a user
(text, metadata keys and values, the question) can produce a delimiter: any
delimiter word, in any case or spacing (letters spaced out too) and in its
Unicode compatibility forms (rag.text.delimiters), is rewritten to plain words, and
metadata values are kept to one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rag.text.delimiters import neutralize_delimiters
from rag.text.sections import SECTION_KEY, common_section, without_section
from rag.types import PromptBlock, RetrievedChunk

BEGININPUT, ENDINPUT = "BEGININPUT", "ENDINPUT"
BEGINCONTEXT, ENDCONTEXT = "BEGINCONTEXT", "ENDCONTEXT"
BEGININSTRUCTION, ENDINSTRUCTION = "BEGININSTRUCTION", "ENDINSTRUCTION"
DELIMITERS = (BEGININPUT, ENDINPUT, BEGINCONTEXT, ENDCONTEXT, BEGININSTRUCTION, ENDINSTRUCTION)

DEFAULT_INSTRUCTION = "{question}\nDon't make up answers if you don't know. Cite your sources."
# Bagel learned this refusal from its SQuAD v2 data (its model card); optional.
IRRELEVANT_INSTRUCTION = (
    "{question}\nDon't make up answers if you don't know. If you don't know, respond with \"IRRELEVANT\". "
    "Cite your sources."
)


def instruction_template(ask_for_irrelevant: bool) -> str:
    return IRRELEVANT_INSTRUCTION if ask_for_irrelevant else DEFAULT_INSTRUCTION


SUMMARIZE_INSTRUCTION = "Summarize the input in around {words} words."

MAX_METADATA_VALUE_CHARS = 300
# Provenance for the API, not for the model: ``section`` (a heading path, ~10 tokens)
# is shown, as it helps cite; whether a page was OCR'd is not worth its tokens.
PROMPT_HIDDEN_KEYS = frozenset({"ocr", "ocr_engine"})

_KEY_UNSAFE = re.compile(r"[:\s]+")


def metadata_value(value: Any) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    text = " ".join(text.split())  # one line, whatever the value held
    if len(text) > MAX_METADATA_VALUE_CHARS:
        text = text[: MAX_METADATA_VALUE_CHARS - 1] + "…"
    return neutralize_delimiters(text)


def metadata_key(key: str) -> str:
    return neutralize_delimiters(_KEY_UNSAFE.sub("_", key.strip())) or "_"


def metadata_lines(metadata: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """One line per metadata field, in the document's own order."""
    lines = []
    for key, value in metadata.items():
        if key in PROMPT_HIDDEN_KEYS or value is None or value == "" or value == [] or value == {}:
            continue
        lines.append((metadata_key(key), metadata_value(value)))
    return tuple(lines)


def merge_adjacent(chunks: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """Chunks of one document that follow each other (consecutive ordinals, same chunk
    metadata, such as a PDF page) become one passage, their overlap written once. Each
    passage keeps the rank of its best chunk."""
    rank = {chunk.chunk_id: position for position, chunk in enumerate(chunks)}
    runs: list[list[RetrievedChunk]] = []
    for chunk in sorted(chunks, key=lambda c: (c.document_id, c.ordinal)):
        previous = runs[-1][-1] if runs else None
        if (
            previous is not None
            and previous.document_id == chunk.document_id
            and previous.ordinal + 1 == chunk.ordinal
            and without_section(previous.metadata) == without_section(chunk.metadata)
        ):
            runs[-1].append(chunk)
        else:
            runs.append([chunk])
    runs.sort(key=lambda run: min(rank[chunk.chunk_id] for chunk in run))
    return [_joined(run) for run in runs]


def _joined(run: list[RetrievedChunk]) -> RetrievedChunk:
    if len(run) == 1:
        return run[0]
    text, end = run[0].text, run[0].end_char
    for chunk in run[1:]:
        if chunk.start_char < end:  # the overlap is already written
            text += chunk.text[end - chunk.start_char :]
        else:
            text += "\n\n" + chunk.text.lstrip()
        end = max(end, chunk.end_char)
    first = run[0]
    # A passage that spans sections shows their common heading (or none).
    section = common_section([chunk.metadata.get(SECTION_KEY) for chunk in run])
    metadata = {
        k: section if k == SECTION_KEY else v
        for k, v in first.metadata.items()
        if k != SECTION_KEY or section
    }
    return replace(
        first,
        metadata=metadata,
        score=max(chunk.score for chunk in run),
        text=text,
        end_char=end,
        merged_ids=tuple(chunk.chunk_id for chunk in run),
    )


def build_blocks(chunks: Sequence[RetrievedChunk]) -> list[PromptBlock]:
    """One block per passage, adjacent chunks of a document merged."""
    chunks = merge_adjacent(chunks)
    return [
        PromptBlock(
            position=position,
            chunks=(chunk,),
            metadata_lines=metadata_lines(chunk.metadata),
            text=neutralize_delimiters(chunk.text.strip()),
        )
        for position, chunk in enumerate(chunks)
    ]


def render_block(block: PromptBlock) -> str:
    lines = [BEGININPUT, BEGINCONTEXT]
    lines += [f"{key}: {value}" for key, value in block.metadata_lines]
    lines += [ENDCONTEXT, block.text, ENDINPUT]
    return "\n".join(lines)


def render_instruction(instruction: str) -> str:
    return "\n".join([BEGININSTRUCTION, instruction.strip(), ENDINSTRUCTION])


def question_instruction(question: str, template: str = DEFAULT_INSTRUCTION) -> str:
    return render_instruction(template.format(question=neutralize_delimiters(question.strip())))


def contextual_prompt(
    blocks: Sequence[PromptBlock], question: str, template: str = DEFAULT_INSTRUCTION
) -> str:
    return "\n".join(
        [*(render_block(block) for block in blocks), question_instruction(question, template)]
    )


def summarization_prompt(text: str, words: int) -> str:
    return "\n".join(
        [
            BEGININPUT,
            neutralize_delimiters(text.strip()),
            ENDINPUT,
            render_instruction(SUMMARIZE_INSTRUCTION.format(words=words)),
        ]
    )


def llama2_chat_prompt(user: str, system: str | None) -> str:
    """The llama-2 wrapper bagel's tokenizer ships, for raw completion servers."""
    if system:
        return f"[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"
    return f"[INST] {user} [/INST]"
