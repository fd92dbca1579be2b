"""Slide decks (.pptx, python-pptx): one document per slide, ``FILE#slide=N``.

A slide's text is its title, the text of its other shapes (groups opened),
its tables as Markdown tables and its speaker notes. Its metadata: ``slide``
(its number), ``section`` (its title) and the deck's title and author.
A slide is a document rather than a section of one because slides are short:
chunks of a whole deck would run across slides and cite the wrong one.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.exc import PackageNotFoundError

from indexer.readers.archive import check_archive
from indexer.readers.base import ReaderOptions, ReadResult, source_id
from indexer.readers.structure import SECTION_KEY, clean_title
from rag.errors import DocumentReadError
from rag.text.tables import markdown_table
from rag.types import SourceDocument

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
    check_archive(path, (options or ReaderOptions()).limits.archive, kind="PPTX")
    try:
        deck = Presentation(str(path))
        slides = [slide_blocks(slide) for slide in deck.slides]
        properties = deck.core_properties
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, AttributeError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable PPTX: {exc}") from exc
    deck_metadata: dict[str, Any] = {"slides": len(slides)}
    if properties.title:
        deck_metadata["title"] = properties.title
    if properties.author:
        deck_metadata["author"] = properties.author
    base, result = source_id(path), ReadResult()
    for number, (title, blocks) in enumerate(slides, start=1):
        text = "\n\n".join(block.strip() for block in blocks if block.strip())
        if not text:
            continue  # a picture-only slide
        source = f"{base}#slide={number}"
        metadata = {
            **deck_metadata,
            "slide": number,
            SECTION_KEY: clean_title(title),
            "source": source,
        }
        result.documents.append(
            SourceDocument(source, text, {k: v for k, v in metadata.items() if v != ""})
        )
    if not result.documents:
        raise DocumentReadError(str(path), "no text on any slide")
    return result
