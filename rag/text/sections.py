"""Gives each chunk the metadata of the document sections it covers (PDF pages, headings).

Chunks do not run across a change of section path (a heading): each range of
text under one heading is chunked on its own, a short one (a heading and a
line) joined to the next. Pages do not cut chunks.

A chunk takes the metadata of the section it starts in (``page``, with
``page_end`` when it runs onto later pages), except ``section`` (a heading
path), which is that of the section holding most of the chunk's text: a chunk
that starts with the last lines of an introduction and goes on with a table
belongs to the table's heading.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from rag.types import ChunkSpan, Metadata, Section

SECTION_KEY = "section"
MIN_SECTION_CHARS = 200


class Chunker(Protocol):
    def chunk(self, text: str) -> list[ChunkSpan]: ...


def section_metadata(sections: Sequence[Section], start: int, end: int) -> Metadata | None:
    if not sections:
        return None
    starts = [section.start_char for section in sections]
    first = max(bisect_right(starts, start) - 1, 0)
    last = max(bisect_right(starts, max(end - 1, start)) - 1, first)
    metadata = dict(sections[first].metadata)
    if last != first and "page" in metadata and "page" in sections[last].metadata:
        metadata["page_end"] = sections[last].metadata["page"]
    if last != first:
        _majority_section(metadata, sections, first, last, start, end)
    return metadata


def _majority_section(
    metadata: Metadata, sections: Sequence[Section], first: int, last: int, start: int, end: int
) -> None:
    shares: dict[str, int] = {}
    for index in range(first, last + 1):
        path = sections[index].metadata.get(SECTION_KEY)
        if path is None:
            continue
        section_end = sections[index + 1].start_char if index + 1 < len(sections) else end
        covered = min(section_end, end) - max(sections[index].start_char, start)
        shares[path] = shares.get(path, 0) + max(covered, 0)
    if shares:
        metadata[SECTION_KEY] = max(shares, key=lambda path: shares[path])


def annotate(spans: list[ChunkSpan], sections: Sequence[Section]) -> list[ChunkSpan]:
    if not sections:
        return spans
    return [
        replace(s, metadata=section_metadata(sections, s.start_char, s.end_char)) for s in spans
    ]


def section_ranges(text: str, sections: Sequence[Section]) -> list[tuple[int, int]]:
    """The text cut wherever the section path changes (not where only the page does); a
    range shorter than ``MIN_SECTION_CHARS`` (a heading and a line) joins the next one."""
    cuts = [
        section.start_char
        for before, section in zip(sections, sections[1:])
        if section.metadata.get(SECTION_KEY) != before.metadata.get(SECTION_KEY)
        and 0 < section.start_char < len(text)
    ]
    ranges, start = [], 0
    for end in [*cuts, len(text)]:
        if end - start >= MIN_SECTION_CHARS or end == len(text):
            ranges.append((start, end))
            start = end
    return ranges


def chunk_document(chunker: Chunker, text: str, sections: Sequence[Section]) -> list[ChunkSpan]:
    """Chunks that never run across a change of section path, each with its sections' metadata."""
    if not any(SECTION_KEY in section.metadata for section in sections):
        return annotate(chunker.chunk(text), sections)
    spans: list[ChunkSpan] = []
    for start, end in section_ranges(text, sections):
        for span in chunker.chunk(text[start:end]):
            spans.append(
                replace(
                    span,
                    ordinal=len(spans),
                    start_char=span.start_char + start,
                    end_char=span.end_char + start,
                )
            )
    return annotate(spans, sections)


def without_section(metadata: Metadata) -> Metadata:
    return {key: value for key, value in metadata.items() if key != SECTION_KEY}


def common_section(paths: Sequence[object]) -> str | None:
    """The deepest section that holds every one of the paths (``A > B`` and ``A > C``: ``A``)."""
    split = [str(path).split(" > ") for path in paths if path]
    if len(split) != len(paths) or not split:
        return None
    common: list[str] = []
    for titles in zip(*split):
        if len(set(titles)) != 1:
            break
        common.append(titles[0])
    return " > ".join(common) or None
