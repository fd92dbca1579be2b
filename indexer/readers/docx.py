"""Word documents (.docx): paragraphs and tables in document order (python-docx);
tables as Markdown tables, headings as each chunk's ``section``; core
properties become metadata.

The archive is checked (unpacked size, compression ratio) before python-docx
opens it, and extraction stops as soon as the text passes the per-document cap.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from indexer.limits import text_too_long
from indexer.readers.archive import check_archive
from indexer.readers.base import ReaderOptions, ReadResult, file_document
from indexer.readers.structure import SECTION_KEY, HeadingTrail, TextBuilder
from rag.errors import DocumentReadError
from rag.text.tables import markdown_table

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def heading_level(paragraph: Paragraph) -> int | None:
    """1-9 for "Heading N" styles, 0 for "Title", None for body text."""
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(name.strip())
    return int(match.group(1)) if match else None


def table_rows(table: Table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def _properties(document: DocxDocument) -> dict[str, Any]:
    properties = document.core_properties
    metadata: dict[str, Any] = {}
    if properties.title:
        metadata["title"] = properties.title
    if properties.author:
        metadata["author"] = properties.author
    if properties.created:
        metadata["date"] = properties.created.date().isoformat()
    return metadata


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    limits = (options or ReaderOptions()).limits
    check_archive(path, limits.archive, kind="DOCX")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable DOCX: {exc}") from exc
    builder, trail = TextBuilder(), HeadingTrail()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            builder.add(markdown_table(table_rows(block)), {SECTION_KEY: trail.path})
            continue
        level = heading_level(block)
        if level is not None and block.text.strip():
            trail.enter(level, block.text)
        builder.add(block.text, {SECTION_KEY: trail.path})
        if builder.length > limits.max_document_chars:
            raise DocumentReadError(
                str(path), text_too_long(builder.length, limits) + " (stopped reading there)"
            )
    result = file_document(path, builder.text, _properties(document))
    return ReadResult(documents=[replace(result, sections=builder.sections)])
