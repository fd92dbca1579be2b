"""Word documents (.docx): paragraphs and tables (python-docx); core properties become metadata.

The archive is checked (unpacked size, compression ratio) before python-docx
opens it, and extraction stops as soon as the text passes the per-document cap.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError
from lxml.etree import XMLSyntaxError

from indexer.limits import text_too_long
from indexer.readers.archive import check_archive
from indexer.readers.base import ReaderOptions, ReadResult, file_document
from rag.errors import DocumentReadError


def _blocks(document: Any) -> Iterator[str]:
    for paragraph in document.paragraphs:
        if text := paragraph.text.strip():
            yield text
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                yield " | ".join(cells)


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    limits = (options or ReaderOptions()).limits
    check_archive(path, limits.archive, kind="DOCX")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable DOCX: {exc}") from exc
    blocks: list[str] = []
    length = 0
    for block in _blocks(document):
        blocks.append(block)
        length += len(block) + 2
        if length > limits.max_document_chars:
            raise DocumentReadError(str(path), text_too_long(length, limits) + " (stopped reading there)")
    properties = document.core_properties
    metadata: dict[str, Any] = {}
    if properties.title:
        metadata["title"] = properties.title
    if properties.author:
        metadata["author"] = properties.author
    if properties.created:
        metadata["date"] = properties.created.date().isoformat()
    return ReadResult(documents=[file_document(path, "\n\n".join(blocks), metadata)])
