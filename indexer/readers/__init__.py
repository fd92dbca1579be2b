"""Readers turn one file into documents (text + metadata), one module per format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from indexer.readers import html, jsonl, markdown, text
from indexer.readers.base import ReadResult

Reader = Callable[[Path], ReadResult]

READERS: dict[str, Reader] = {
    ".txt": text.read,
    ".text": text.read,
    ".md": markdown.read,
    ".markdown": markdown.read,
    ".html": html.read,
    ".htm": html.read,
    ".jsonl": jsonl.read,
}


def reader_for(path: Path) -> Reader | None:
    return READERS.get(path.suffix.lower())


__all__ = ["READERS", "ReadResult", "reader_for"]
