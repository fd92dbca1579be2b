"""PDF: the text of each page (pypdf), with the page number on every chunk.

Document information (title, author, creation date) becomes metadata. An
encrypted PDF that opens with an empty password is read; others are reported.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from indexer.readers.base import ReaderOptions, ReadResult, file_document
from rag.errors import DocumentReadError
from rag.types import Section

PAGE_SEPARATOR = "\n\n"


def _info(reader: PdfReader) -> dict[str, Any]:
    info = reader.metadata
    if info is None:
        return {}
    metadata: dict[str, Any] = {}
    for key, field in (("title", "title"), ("author", "author"), ("subject", "subject")):
        value = getattr(info, field, None)
        if value and str(value).strip():
            metadata[key] = str(value).strip()
    created = info.creation_date if hasattr(info, "creation_date") else None
    if created is not None:
        metadata["date"] = created.date().isoformat()
    return metadata


def _page_texts(path: Path, reader: PdfReader, max_chars: int) -> list[str]:
    """Each page's text; stops as soon as the document passes the per-document text cap."""
    pages: list[str] = []
    length = 0
    for page in reader.pages:
        pages.append(page.extract_text() or "")
        length += len(pages[-1])
        if length > max_chars:
            raise DocumentReadError(
                str(path), f"extracted text passed {max_chars:,} characters by page {len(pages)} (stopped reading "
                "there); split the document or raise RAG_INDEXING__MAX_DOCUMENT_CHARS",
            )  # fmt: skip
    return pages


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentReadError(str(path), "encrypted PDF (a password is needed)")
        pages = _page_texts(path, reader, (options or ReaderOptions()).limits.max_document_chars)
        metadata = _info(reader)
    except DocumentReadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable PDF: {exc}") from exc
    text, sections = "", []
    for number, page_text in enumerate(pages, start=1):
        if not page_text.strip():
            continue
        if text:
            text += PAGE_SEPARATOR
        sections.append(Section(start_char=len(text), metadata={"page": number}))
        text += page_text.strip()
    if not text:
        raise DocumentReadError(str(path), "no extractable text (a scanned PDF needs OCR)")
    document = file_document(path, text, {**metadata, "pages": len(pages)})
    return ReadResult(documents=[replace(document, sections=tuple(sections))])
