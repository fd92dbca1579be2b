"""Slide decks (.pptx, python-pptx): one section per slide, in slide order.

A slide's text is its title, the text of its other shapes (groups opened),
its tables as Markdown tables and its speaker notes. Each chunk carries
``slide`` (its number) and ``section`` (the slide's title).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.exc import PackageNotFoundError

from indexer.readers.base import ReaderOptions, ReadResult, file_document
from indexer.readers.structure import SECTION_KEY, TextBuilder, clean_title
from rag.errors import DocumentReadError
from rag.tables import markdown_table

NOTES_LABEL = "Notes:"


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shapes(shape.shapes)
        else:
            yield shape


def slide_blocks(slide: Any) -> tuple[str, list[str]]:
    """The slide's title and its other blocks of text, in shape order."""
    title_shape = slide.shapes.title
    title = title_shape.text_frame.text.strip() if title_shape is not None else ""
    blocks: list[str] = [title] if title else []
    for shape in _shapes(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            blocks.append(markdown_table(rows))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            blocks.append(shape.text_frame.text)
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = slide.notes_slide.notes_text_frame.text.strip()
        if notes:
            blocks.append(f"{NOTES_LABEL} {notes}")
    return title, blocks


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    try:
        deck = Presentation(str(path))
        builder = TextBuilder()
        for number, slide in enumerate(deck.slides, start=1):
            title, blocks = slide_blocks(slide)
            metadata = {"slide": number, SECTION_KEY: clean_title(title)}
            for block in blocks:
                builder.add(block, metadata)
        properties = deck.core_properties
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable PPTX: {exc}") from exc
    metadata: dict[str, Any] = {"slides": len(deck.slides)}
    if properties.title:
        metadata["title"] = properties.title
    if properties.author:
        metadata["author"] = properties.author
    document = file_document(path, builder.text, metadata)
    return ReadResult(documents=[replace(document, sections=builder.sections)])
