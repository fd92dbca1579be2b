"""Word documents (.docx): paragraphs and tables (python-docx); core properties become metadata."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError

from indexer.readers.base import ReaderOptions, ReadResult, file_document
from rag.errors import DocumentReadError


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable DOCX: {exc}") from exc
    blocks = [p.text.strip() for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    properties = document.core_properties
    metadata: dict[str, Any] = {}
    if properties.title:
        metadata["title"] = properties.title
    if properties.author:
        metadata["author"] = properties.author
    if properties.created:
        metadata["date"] = properties.created.date().isoformat()
    return ReadResult(documents=[file_document(path, "\n\n".join(blocks), metadata)])
