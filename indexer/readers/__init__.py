"""Readers turn one file into documents (text + metadata), one module per format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from indexer.readers import (
    csv_table,
    docx,
    eml,
    html,
    image,
    jsonl,
    markdown,
    pdf,
    pptx,
    text,
    xlsx,
)
from indexer.readers.base import ReaderOptions, ReadResult

Reader = Callable[[Path, ReaderOptions | None], ReadResult]

READERS: dict[str, Reader] = {
    ".txt": text.read,
    ".text": text.read,
    ".md": markdown.read,
    ".markdown": markdown.read,
    ".html": html.read,
    ".htm": html.read,
    ".jsonl": jsonl.read,
    ".pdf": pdf.read,
    ".docx": docx.read,
    ".csv": csv_table.read,
    ".tsv": csv_table.read,
    ".xlsx": xlsx.read,
    ".pptx": pptx.read,
    ".eml": eml.read,
    ".png": image.read,
    ".jpg": image.read,
    ".jpeg": image.read,
    ".tif": image.read,
    ".tiff": image.read,
}


def reader_for(path: Path) -> Reader | None:
    return READERS.get(path.suffix.lower())


__all__ = ["READERS", "ReaderOptions", "ReadResult", "reader_for"]
