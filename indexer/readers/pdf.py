"""PDF: the text of each page (pypdf), with the page number on every chunk.

Document information (title, author, creation date) becomes metadata. An
encrypted PDF that opens with an empty password is read; others are reported.
Tables become Markdown tables, a page without a text layer is read by OCR
(its chunks say ``ocr: true`` and the engine), and the outline, where there
is one, gives each page its ``section`` (indexer/readers/pdf_pages.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdfium2
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from indexer.readers import ocr, pdf_pages
from indexer.readers.base import ReaderOptions, ReadResult, file_document
from rag.errors import DocumentReadError
from rag.types import Section

logger = logging.getLogger(__name__)

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
        raw_pages = _page_texts(
            path, reader, (options or ReaderOptions()).limits.max_document_chars
        )
        metadata = _info(reader)
        paths = _outline(reader, len(raw_pages))
        result = ReadResult()
        pages = [
            _page_text(path, reader, index, text, result) for index, text in enumerate(raw_pages)
        ]
    except DocumentReadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable PDF: {exc}") from exc
    text, sections = "", []
    for number, (page_text, page_metadata) in enumerate(pages, start=1):
        if not page_text.strip():
            continue
        if text:
            text += PAGE_SEPARATOR
        section = {"page": number, **({"section": paths[number - 1]} if paths[number - 1] else {})}
        sections.append(Section(start_char=len(text), metadata={**section, **page_metadata}))
        text += page_text.strip()
    if not text:
        if result.problems:
            raise DocumentReadError(
                str(path),
                f"no text layer, and its pages could not be read: {result.problems[0].reason}",
            )
        raise DocumentReadError(str(path), "no extractable text, and OCR recognised none")
    document = file_document(path, text, {**metadata, "pages": len(pages)})
    result.documents.append(replace(document, sections=tuple(sections)))
    return result


def _outline(reader: PdfReader, page_count: int) -> list[str]:
    try:
        return pdf_pages.outline_paths(reader, page_count)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return [""] * page_count  # a broken outline costs the section paths, not the text


def _page_text(
    path: Path, reader: PdfReader, index: int, text: str, result: ReadResult
) -> tuple[str, dict[str, Any]]:
    """A page's text with its tables, or its OCR'd text when it has no text layer; a page
    that cannot be OCR'd is reported in ``result.problems`` and left out."""
    if pdf_pages.needs_ocr(reader, index, text):
        where = f"{path}#page={index + 1}"
        if ocr.engine_version() is None:
            result.problems.append(
                DocumentReadError(
                    where,
                    f"page has no text layer and needs OCR, but tesseract is not installed ({ocr.INSTALL_HINT})",
                )
            )
            return text, {}  # empty, or the few characters it has (a page number)
        try:
            recognised = pdf_pages.ocr_page(path, index)
            return (recognised, ocr.ocr_metadata()) if recognised.strip() else (text, {})
        except (ocr.OcrError, pypdfium2.PdfiumError) as exc:
            result.problems.append(DocumentReadError(where, f"OCR failed: {exc}"))
            return text, {}
    if pdf_pages.draws_rulings(reader, index):
        try:
            with_tables = pdf_pages.page_with_tables(path, index)
        except Exception as exc:  # noqa: BLE001 - pdfminer raises many types; pypdf's text stands
            logger.warning("table extraction failed on %s page %d: %s", path, index + 1, exc)
            with_tables = None
        if with_tables:
            return with_tables, {}
    return text, {}
