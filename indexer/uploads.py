"""Documents sent over HTTP: saved under the data dir, then read by the same readers as files.

An upload's source is the name the client gives (default: the file name, or
``text:<sha256>`` for pasted text), not the path it was saved under.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from indexer.metadata import with_metadata
from indexer.readers import READERS, ReaderOptions, reader_for
from indexer.readers.base import json_safe
from rag.errors import DocumentReadError
from rag.types import SourceDocument

PAYLOAD_FILE = "payload.json"
TEXT_FILE = "text.txt"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UnsupportedUpload(ValueError):
    pass


@dataclass(frozen=True)
class UploadPayload:
    kind: Literal["file", "text"]
    source: str
    filename: str
    metadata: dict[str, Any] = field(default_factory=dict)


def safe_filename(name: str) -> str:
    """The last path component, with anything unusual replaced; never empty or hidden."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base[:200] or "upload"


def check_supported(filename: str) -> None:
    if reader_for(Path(filename)) is None:
        supported = ", ".join(sorted(READERS))
        raise UnsupportedUpload(f"unsupported file type {Path(filename).suffix or '(none)'!r}; supported: {supported}")


def text_source(text: str) -> str:
    return "text:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def save_upload(
    folder: Path, payload: UploadPayload, content: bytes | None = None, text: str | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if payload.kind == "file":
        assert content is not None
        (folder / payload.filename).write_bytes(content)
    else:
        assert text is not None
        (folder / TEXT_FILE).write_text(text, encoding="utf-8")
    (folder / PAYLOAD_FILE).write_text(json.dumps(payload.__dict__), encoding="utf-8")


def load_payload(folder: Path) -> UploadPayload:
    return UploadPayload(**json.loads((folder / PAYLOAD_FILE).read_text(encoding="utf-8")))


def read_upload(folder: Path, payload: UploadPayload) -> tuple[list[SourceDocument], list[tuple[str, str]]]:
    """The upload's documents and the problems met reading it ((name, reason) pairs)."""
    if payload.kind == "text":
        text = (folder / TEXT_FILE).read_text(encoding="utf-8")
        document = SourceDocument(source=payload.source, text=text, metadata={})
        return [with_metadata(document, json_safe(payload.metadata), {"source": payload.source})], []
    path = folder / payload.filename
    reader = reader_for(path)
    if reader is None:
        return [], [(payload.filename, "unsupported file type")]
    try:
        result = reader(path, ReaderOptions())
    except DocumentReadError as exc:
        return [], [(payload.filename, exc.reason)]
    except (OSError, ValueError, RecursionError) as exc:
        return [], [(payload.filename, f"{type(exc).__name__}: {exc}")]
    saved_as = str(path.resolve())
    documents = []
    for document in result.documents:
        source = payload.source + document.source[len(saved_as) :]  # keeps a JSONL line's #id
        metadata = {k: v for k, v in document.metadata.items() if v != saved_as and k != "source"}
        renamed = replace(document, source=source, metadata={**metadata, "filename": payload.filename})
        documents.append(with_metadata(renamed, json_safe(payload.metadata), {"source": source}))
    problems = [(payload.filename, problem.reason) for problem in result.problems]
    return documents, problems


def remove_upload(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
