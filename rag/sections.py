"""Gives each chunk the metadata of the document sections it covers (PDF pages)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace

from rag.types import ChunkSpan, Metadata, Section


def section_metadata(sections: Sequence[Section], start: int, end: int) -> Metadata | None:
    if not sections:
        return None
    starts = [section.start_char for section in sections]
    first = max(bisect_right(starts, start) - 1, 0)
    last = max(bisect_right(starts, max(end - 1, start)) - 1, first)
    metadata = dict(sections[first].metadata)
    if last != first and "page" in metadata and "page" in sections[last].metadata:
        metadata["page_end"] = sections[last].metadata["page"]
    return metadata


def annotate(spans: list[ChunkSpan], sections: Sequence[Section]) -> list[ChunkSpan]:
    if not sections:
        return spans
    return [replace(s, metadata=section_metadata(sections, s.start_char, s.end_char)) for s in spans]
