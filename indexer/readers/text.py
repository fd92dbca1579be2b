"""Plain text files, in any common encoding."""

from __future__ import annotations

from pathlib import Path

from indexer.readers.base import ReaderOptions, ReadResult, file_document, read_text_file


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    return ReadResult(documents=[file_document(path, read_text_file(path), {})])
