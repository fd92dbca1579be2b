"""JSON Lines: one document per line, ``{"text": ..., "metadata": {...}, "id"?: ...}``.

A line's identity is ``FILE#ID`` when it has an ``id`` (so inserting lines does
not shift identities), else ``FILE#L<line number>``. A bad line is reported and
the other lines are still read, as is a line whose text or metadata is over
the per-document limits.
"""

from __future__ import annotations

import json
from pathlib import Path

from indexer.limits import ReadLimits, text_too_long
from indexer.metadata_limits import validate_metadata
from indexer.readers.base import ReaderOptions, ReadResult, json_safe, read_text_file, source_id
from rag.errors import DocumentReadError
from rag.types import SourceDocument


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    limits = (options or ReaderOptions()).limits
    result = ReadResult()
    base = source_id(path)
    for number, line in enumerate(read_text_file(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result.documents.append(_parse_line(line, base, number, limits))
        except ValueError as exc:  # MetadataLimitError too
            result.problems.append(DocumentReadError(f"{path}:{number}", str(exc)))
        except RecursionError:
            result.problems.append(
                DocumentReadError(f"{path}:{number}", "JSON nests too deeply to read")
            )
    if not result.documents and not result.problems:
        raise DocumentReadError(str(path), "no JSON lines")
    return result


def _parse_line(line: str, base: str, number: int, limits: ReadLimits) -> SourceDocument:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise ValueError("a line must be a JSON object")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError('missing or empty "text"')
    if len(text) > limits.max_document_chars:
        raise ValueError(text_too_long(len(text), limits))
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError('"metadata" must be an object')
    validate_metadata(metadata, limits.metadata)
    line_id = record.get("id", metadata.get("id"))
    source = f"{base}#{line_id}" if line_id is not None else f"{base}#L{number}"
    return SourceDocument(
        source=source, text=text, metadata={**json_safe(metadata), "source": source}
    )
