"""What every reader returns, and helpers they share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from indexer.limits import ReadLimits
from rag.errors import DocumentReadError
from rag.types import SourceDocument

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


@dataclass(frozen=True)
class ReaderOptions:
    csv_text_column: str | None = None
    limits: ReadLimits = field(default_factory=ReadLimits)


@dataclass
class ReadResult:
    documents: list[SourceDocument] = field(default_factory=list)
    problems: list[DocumentReadError] = field(default_factory=list)


def source_id(path: Path) -> str:
    return str(path.resolve())


def read_text_file(path: Path) -> str:
    """Decode a text file: BOM first, then UTF-8, then the detected encoding."""
    data = path.read_bytes()
    if not data.strip():
        raise DocumentReadError(str(path), "empty file")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentReadError(
                    str(path),
                    f"undecodable bytes: starts with a {encoding} byte-order mark but is not {encoding} ({exc.reason})",
                ) from exc
    if b"\x00" in data:
        raise DocumentReadError(str(path), "binary content (NUL bytes) in a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise DocumentReadError(str(path), "undecodable bytes: no text encoding fits")
    return str(best)


def json_safe(value: Any) -> Any:
    """Metadata values as JSON can store them (YAML dates become ISO strings)."""
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def file_document(path: Path, text: str, metadata: dict[str, Any]) -> SourceDocument:
    if not text.strip():
        raise DocumentReadError(str(path), "no text content")
    source = source_id(path)
    return SourceDocument(
        source=source, text=text, metadata={**json_safe(metadata), "source": source}
    )
