"""Parses the sources a model cites and matches them to the blocks it was sent.

Bagel cites by repeating a block's metadata lines after a trailer line
(``Source:``, ``Reference(s):`` or ``Reference:``). A cited group is verified
when every line of it agrees with one block's metadata; a group that agrees
with no block is reported as unverified, never passed on as a source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.types import Citation, PromptBlock, UnverifiedCitation

_TRAILER = re.compile(
    r"^[ \t>*#_]*(sources?|references?|reference\(s\)|citations?)[ \t*_]*:[ \t*_]*(.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\[\d+\])\s*")
_KEY_VALUE = re.compile(r"^([A-Za-z_][\w .()-]{0,40}?)\s*:\s+(.+)$")
_MIN_CONTAINED_CHARS = 8

Pair = tuple[str, str]


@dataclass(frozen=True)
class ParsedAnswer:
    body: str
    cited_groups: tuple[tuple[Pair, ...], ...]


def _find_trailer(text: str) -> re.Match[str] | None:
    """A label alone on its line (``Source:``) wins over one with a value after it,
    which may just be a cited ``source: path`` metadata line."""
    matches = list(_TRAILER.finditer(text))
    bare = [m for m in matches if not m.group(2).strip()]
    chosen = bare or matches
    return chosen[0] if chosen else None


def parse_answer(text: str) -> ParsedAnswer:
    """Split a model answer into its body and the metadata groups it cites."""
    match = _find_trailer(text)
    if match is None:
        return ParsedAnswer(body=text.strip(), cited_groups=())
    body = text[: match.start()].strip()
    section = [match.group(2)] + text[match.end() :].splitlines()
    return ParsedAnswer(body=body, cited_groups=tuple(_groups(section)))


def _groups(lines: list[str]) -> list[tuple[Pair, ...]]:
    groups: list[list[Pair]] = [[]]
    for raw in lines:
        if _TRAILER.match(raw):
            raw = _TRAILER.match(raw).group(2)  # type: ignore[union-attr]
            groups.append([])
        numbered = bool(_BULLET.match(raw))
        line = _BULLET.sub("", raw).strip()
        if not line:
            groups.append([])
            continue
        match = _KEY_VALUE.match(line)
        pair: Pair = (
            (match.group(1).strip().lower(), match.group(2).strip()) if match else ("", line)
        )
        current = groups[-1]
        if numbered or any(key == pair[0] and key for key, _ in current):
            groups.append([])
        groups[-1].append(pair)
    return [tuple(group) for group in groups if group]


def normalize(value: str) -> str:
    value = value.strip().strip("\"'`*<>[]().,;").lower()
    value = re.sub(r"^https?://(www\.)?", "", value)
    return " ".join(value.rstrip("/").split())


def _value_agrees(cited: str, shown: str) -> bool:
    a, b = normalize(cited), normalize(shown)
    if not a or not b:
        return False
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= _MIN_CONTAINED_CHARS and shorter in longer


def _pair_agrees(pair: Pair, block: PromptBlock) -> bool:
    key, value = pair
    for shown_key, shown_value in block.metadata_lines:
        if key and key != shown_key.lower():
            continue
        if _value_agrees(value, shown_value):
            return True
    return False


def match_citations(
    groups: Sequence[tuple[Pair, ...]], blocks: Sequence[PromptBlock]
) -> tuple[list[Citation], list[UnverifiedCitation]]:
    """Each group goes to every block that agrees with all its lines, best first."""
    citations: dict[int, Citation] = {}
    unverified: list[UnverifiedCitation] = []
    for group in groups:
        matching = [b for b in blocks if all(_pair_agrees(pair, b) for pair in group)]
        if not matching:
            unverified.append(UnverifiedCitation(cited_lines=group))
            continue
        for block in matching:
            if block.position not in citations:
                first = block.chunks[0]
                citations[block.position] = Citation(
                    block_position=block.position,
                    chunk_ids=tuple(i for chunk in block.chunks for i in chunk.chunk_ids),
                    document_id=first.document_id,
                    metadata=first.metadata,
                    cited_lines=group,
                )
    return [citations[i] for i in sorted(citations)], unverified
