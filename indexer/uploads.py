"""Documents sent over HTTP: saved under the data dir, then read by the same readers as files.

An upload's source is the name the client gives (default: the file name made
safe, or ``text:<sha256>`` for pasted text), not the path it was saved under.

A file name is made safe without losing its identity: path parts and control
characters go, letters of every script stay, and when anything had to change a
short hash of the original name is added before the extension, so two names
that differ (``報告.txt``, ``отчёт.txt``, ``a?.txt``, ``a*.txt``) never become
one source and one upload never silently replaces another.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from indexer.limits import ReadLimits, check_document, check_metadata
from indexer.metadata import with_metadata
from indexer.readers import READERS, ReaderOptions, reader_for
from indexer.readers.base import json_safe
from indexer.sandbox import ReaderBudget, read_file
from rag.errors import DocumentReadError
from rag.types import SourceDocument

PAYLOAD_FILE = "payload.json"
TEXT_FILE = "text.txt"
MAX_NAME_BYTES = 200  # under every file system's 255-byte name limit, with room for the hash
_KEPT_PUNCTUATION = frozenset("._-+()[]@,=~ ")
_RUNS = re.compile(r"_{2,}")


class UnsupportedUpload(ValueError):
    pass


@dataclass(frozen=True)
class UploadPayload:
    kind: Literal["file", "text"]
    source: str
    filename: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _safe_char(char: str) -> str:
    if char.isalnum() or char in _KEPT_PUNCTUATION or unicodedata.category(char).startswith("M"):
        return char
    return "_"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", "ignore")


def safe_filename(name: str) -> str:
    """The last path component, NFC, with characters other than letters, digits, marks and
    ``._-+()[]@,=~`` and space replaced; never empty or hidden, at most 200 UTF-8 bytes, the
    extension kept. Where this changed the name, ``~<8 hex of sha256(name)>`` goes before
    the extension, so different names stay different sources."""
    original = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = (
        _RUNS.sub("_", "".join(_safe_char(c) for c in original)).strip(" ").lstrip(".").strip(" ")
    )
    stem, suffix = (
        (cleaned[: -len(Path(cleaned).suffix)], Path(cleaned).suffix)
        if Path(cleaned).suffix
        else (cleaned, "")
    )
    if cleaned == original and stem and len(cleaned.encode("utf-8")) <= MAX_NAME_BYTES:
        return cleaned
    tag = "~" + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    suffix = _truncate_utf8(suffix, 16)  # an extension longer than that is not one we read
    stem = _truncate_utf8(stem or "upload", MAX_NAME_BYTES - len(tag) - len(suffix.encode("utf-8")))
    return stem + tag + suffix


def check_supported(filename: str) -> None:
    if reader_for(Path(filename)) is None:
        supported = ", ".join(sorted(READERS))
        raise UnsupportedUpload(
            f"unsupported file type {Path(filename).suffix or '(none)'!r}; supported: {supported}"
        )


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


def read_upload(
    folder: Path,
    payload: UploadPayload,
    limits: ReadLimits | None = None,
    budget: ReaderBudget | None = None,
) -> tuple[list[SourceDocument], list[tuple[str, str]]]:
    """The upload's documents and the problems met reading it ((name, reason) pairs).

    The file is read in a child process when there is a ``budget``; every document
    is held to ``limits`` (a document over one is reported, the others kept)."""
    limits = limits or ReadLimits()
    try:
        check_metadata("the upload's metadata", payload.metadata, limits)
    except DocumentReadError as exc:
        return [], [(payload.filename, exc.reason)]
    if payload.kind == "text":
        text = (folder / TEXT_FILE).read_text(encoding="utf-8")
        document = SourceDocument(source=payload.source, text=text, metadata={})
        return _within_limits(
            [with_metadata(document, json_safe(payload.metadata), {"source": payload.source})],
            limits,
        )
    path = folder / payload.filename
    if reader_for(path) is None:
        return [], [(payload.filename, "unsupported file type")]
    try:
        result = read_file(path, ReaderOptions(limits=limits), budget)
    except DocumentReadError as exc:
        return [], [(payload.filename, exc.reason)]
    except (OSError, ValueError, RecursionError) as exc:
        return [], [(payload.filename, f"{type(exc).__name__}: {exc}")]
    saved_as = str(path.resolve())
    documents = []
    for document in result.documents:
        source = payload.source + document.source[len(saved_as) :]  # keeps a JSONL line's #id
        metadata = {k: v for k, v in document.metadata.items() if v != saved_as and k != "source"}
        renamed = replace(
            document, source=source, metadata={**metadata, "filename": payload.filename}
        )
        documents.append(with_metadata(renamed, json_safe(payload.metadata), {"source": source}))
    kept, refused = _within_limits(documents, limits)
    problems = [(payload.filename, problem.reason) for problem in result.problems]
    return kept, problems + refused


def _within_limits(
    documents: list[SourceDocument], limits: ReadLimits
) -> tuple[list[SourceDocument], list[tuple[str, str]]]:
    kept: list[SourceDocument] = []
    refused: list[tuple[str, str]] = []
    for document in documents:
        try:
            check_document(document, limits)
            kept.append(document)
        except DocumentReadError as exc:
            refused.append((exc.path, exc.reason))
    return kept, refused


def remove_upload(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
