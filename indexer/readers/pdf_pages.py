"""What the PDF reader does beyond pypdf's text: tables (pdfplumber), pages
without a text layer (rendered by pypdfium2, read by OCR) and the outline.

pdfplumber is several times slower than pypdf, so it only looks at pages that
draw lines or rectangles (the rulings its table finder needs). pdfium is not
thread-safe: one lock serialises every use of it in this process.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2
from pypdf import PdfReader
from pypdf.generic import Destination

from indexer.readers import ocr
from indexer.readers.structure import HeadingTrail
from rag.text.tables import markdown_table

MIN_TEXT_CHARS = 16  # fewer non-space characters than this: the page is an image (scanned)
OCR_DPI = 200  # measured: 300 doubles the time for no accuracy gain on 200-dpi scans (benchmark)
_DRAWS_RULINGS = re.compile(rb"(?:^|\s)(?:re|l)(?:\s|$)")
_PDFIUM_LOCK = threading.Lock()


def needs_ocr(reader: PdfReader, index: int, text: str) -> bool:
    """No text layer, or a few characters of one (a page number) over an image."""
    characters = len("".join(text.split()))
    return characters == 0 or (characters < MIN_TEXT_CHARS and has_images(reader, index))


def has_images(reader: PdfReader, index: int) -> bool:
    try:
        resources = reader.pages[index].get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        if xobjects is None:
            return False
        return any(
            x.get_object().get("/Subtype") == "/Image" for x in xobjects.get_object().values()
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def draws_rulings(reader: PdfReader, index: int) -> bool:
    try:
        contents = reader.pages[index].get_contents()
        return contents is not None and bool(_DRAWS_RULINGS.search(contents.get_data()))
    except (ValueError, KeyError, TypeError, OSError):
        return False


def page_with_tables(path: Path, index: int) -> str | None:
    """The page's text with its tables as Markdown tables in place, or None without tables."""
    with pdfplumber.open(path, pages=[index + 1]) as pdf:
        page = pdf.pages[0]
        tables = sorted(page.find_tables(), key=lambda table: table.bbox[1])
        if not tables:
            return None
        boxes = [table.bbox for table in tables]

        def outside_tables(obj: dict[str, Any]) -> bool:
            x, top = obj.get("x0", 0), obj.get("top", 0)
            return not any(b[0] <= x <= b[2] and b[1] <= top <= b[3] for b in boxes)

        blocks, top = [], 0.0
        for table in tables:
            blocks.append(_band_text(page, outside_tables, top, table.bbox[1]))
            blocks.append(markdown_table(table.extract()))
            top = table.bbox[3]
        blocks.append(_band_text(page, outside_tables, top, page.height))
        return "\n\n".join(block for block in blocks if block.strip())


def _band_text(page: Any, keep: Any, top: float, bottom: float) -> str:
    if bottom - top < 1:
        return ""
    band = page.crop((0, top, page.width, bottom), strict=False).filter(keep)
    return str(band.extract_text() or "").strip()


def ocr_page(path: Path, index: int) -> str:
    with _PDFIUM_LOCK:
        document = pypdfium2.PdfDocument(path)
        try:
            image = document[index].render(scale=OCR_DPI / 72).to_pil()
        finally:
            document.close()
    return ocr.recognize(image)


def outline_paths(reader: PdfReader, page_count: int) -> list[str]:
    """Each page's section path from the PDF outline: the entries before it, then the
    first entry that starts on it."""
    entries: list[tuple[int, int, str]] = []
    _flatten(reader, reader.outline, 1, entries)
    by_page: dict[int, list[tuple[int, str]]] = {}
    for page, level, title in sorted(entries, key=lambda e: e[0]):
        by_page.setdefault(page, []).append((level, title))
    trail, paths = HeadingTrail(), []
    for page in range(page_count):
        starting = by_page.get(page, [])
        path = trail.path
        for position, (level, title) in enumerate(starting):
            entered = trail.enter(level, title)
            if position == 0:
                path = entered
        paths.append(path)
    return paths


def _flatten(
    reader: PdfReader, outline: Sequence[Any], level: int, into: list[tuple[int, int, str]]
) -> None:
    for item in outline:
        if isinstance(item, list):
            _flatten(reader, item, level + 1, into)
        elif isinstance(item, Destination):
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0 and item.title:
                into.append((page, level, str(item.title)))
