"""Issue 17 readers on real files made by real tools: tables, OCR, spreadsheets,
slides, e-mail, and section paths."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.readers import READERS, ocr, reader_for
from indexer.readers.structure import HeadingTrail, markdown_sections
from rag.errors import DocumentReadError
from rag.text.tables import find_tables, markdown_table
from tests import office_factory
from tests.pdf_factory import write_pdf

needs_tesseract = pytest.mark.skipif(
    ocr.engine_version() is None, reason="tesseract is not installed"
)


def read(path: Path):  # type: ignore[no-untyped-def]
    reader = reader_for(path)
    assert reader is not None, path
    return reader(path, None)


@pytest.fixture
def without_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine where tesseract is not installed: it is not on the PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")
    ocr.engine_version.cache_clear()
    yield
    ocr.engine_version.cache_clear()


def character_accuracy(expected: str, recognised: str) -> float:
    a, b = " ".join(expected.split()), " ".join(recognised.split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def test_every_new_format_has_a_reader() -> None:
    assert {".xlsx", ".pptx", ".eml", ".png", ".jpg", ".jpeg", ".tif", ".tiff"} <= set(READERS)


def test_markdown_tables_escape_pipes_pad_short_rows_and_are_found_again() -> None:
    text = markdown_table([["Name", "Note"], ["a|b", "two\nlines"], ["only one"]])
    assert text.splitlines() == [
        "| Name | Note |",
        "| --- | --- |",
        "| a\\|b | two lines |",
        "| only one |  |",
    ]
    (table,) = find_tables(text, 0, len(text))
    assert text[slice(*table.header)] == "| Name | Note |\n| --- | --- |"
    assert len(table.rows) == 2


def test_heading_trail_and_markdown_sections_skip_fenced_code() -> None:
    trail = HeadingTrail()
    assert (
        trail.enter(1, "A") == "A"
        and trail.enter(2, "B") == "A > B"
        and trail.enter(2, "C") == "A > C"
    )
    assert trail.enter(1, "D") == "D"
    text = "intro\n# Guide\ntext\n```\n# not a heading\n```\n## Install\nsteps\n"
    sections = markdown_sections(text)
    assert [s.metadata.get("section") for s in sections] == [None, "Guide", "Guide > Install"]
    assert text[sections[2].start_char :].startswith("## Install")


def test_markdown_chunks_say_their_section(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nHello.\n\n## Install\n\nRun make install.\n")
    (document,) = read(path).documents
    assert [s.metadata for s in document.sections] == [
        {"section": "Guide"},
        {"section": "Guide > Install"},
    ]


def test_docx_keeps_order_tables_and_heading_paths(tmp_path: Path) -> None:
    (document,) = read(office_factory.docx_with_table(tmp_path / "fleet.docx", rows=3)).documents
    assert (
        document.text.index("This register")
        < document.text.index("| Vehicle |")
        < document.text.index("Van 99")
    )
    assert "| Van 2 | PL-1074 | Aiko C. | marble |" in document.text
    paths = [s.metadata["section"] for s in document.sections]
    assert paths == [
        "Fleet register",
        "Fleet register > Vans in service",
        "Fleet register > Retired vans",
    ]
    assert document.metadata["title"] == "Fleet register"


def test_html_tables_and_headings(tmp_path: Path) -> None:
    (document,) = read(office_factory.html_with_table(tmp_path / "fleet.html", rows=3)).documents
    assert find_tables(document.text, 0, len(document.text))
    assert "Home | Contact" not in document.text  # navigation is still dropped
    assert [s.metadata.get("section") for s in document.sections][-2:] == [
        "Fleet register > Vans in service",
        "Fleet register > Retired vans",
    ]


def test_pdf_tables_come_out_as_markdown_in_place(tmp_path: Path) -> None:
    rows = [office_factory.TABLE_HEADER, *office_factory.table_rows(5)]
    path = office_factory.pdf_with_table(
        tmp_path / "table.pdf", rows, "The fleet table follows.", "End of the table."
    )
    (document,) = read(path).documents
    text = document.text
    assert (
        text.index("The fleet table follows.")
        < text.index("| Vehicle | Plate | Driver | Cargo |")
        < text.index("End of the table.")
    )
    assert "| Van 3 | PL-1111 | Omar D. | tulips |" in text


def test_pdf_outline_gives_each_page_its_section(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "book.pdf",
        [
            "Intro text of the book.",
            "Chapter one begins here.",
            "Chapter one goes on.",
            "The appendix.",
        ],
    )
    office_factory.with_outline(
        path, [("Introduction", 0, 1), ("Chapter 1", 1, 1), ("Part 2", 2, 2), ("Appendix", 3, 1)]
    )
    (document,) = read(path).documents
    assert [s.metadata for s in document.sections] == [
        {"page": 1, "section": "Introduction"},
        {"page": 2, "section": "Chapter 1"},
        {"page": 3, "section": "Chapter 1 > Part 2"},
        {"page": 4, "section": "Appendix"},
    ]


@needs_tesseract
def test_a_scanned_pdf_is_read_by_ocr_and_says_so(tmp_path: Path) -> None:
    path = office_factory.scanned_pdf(tmp_path / "memo.pdf")
    from pypdf import PdfReader

    assert all(
        not (page.extract_text() or "").strip() for page in PdfReader(path).pages
    )  # no text layer
    (document,) = read(path).documents
    assert [s.metadata["page"] for s in document.sections] == [1, 2]
    assert all(
        s.metadata["ocr"] is True and s.metadata["ocr_engine"].startswith("tesseract ")
        for s in document.sections
    )
    assert character_accuracy("\n".join(office_factory.SCANNED_PAGES), document.text) > 0.95


@needs_tesseract
def test_a_pdf_with_one_scanned_page_keeps_its_text_pages_as_they_were(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    text_pdf = write_pdf(tmp_path / "text.pdf", ["A page with a real text layer on it."])
    scanned = office_factory.scanned_pdf(tmp_path / "scan.pdf", [office_factory.SCANNED_PAGES[1]])
    writer = PdfWriter()
    for source in (text_pdf, scanned):
        for page in PdfReader(source).pages:
            writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as handle:
        writer.write(handle)
    (document,) = read(mixed).documents
    assert document.sections[0].metadata == {"page": 1}
    assert (
        document.sections[1].metadata["page"] == 2 and document.sections[1].metadata["ocr"] is True
    )
    assert "FX-2291" in document.text


@needs_tesseract
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
def test_images_are_read_by_ocr(tmp_path: Path, suffix: str) -> None:
    (document,) = read(office_factory.scanned_image(tmp_path / f"memo{suffix}")).documents
    assert "blue tram" in document.text and document.metadata["ocr"] is True
    assert document.metadata["ocr_engine"].startswith("tesseract")


@needs_tesseract
def test_an_image_without_text_is_reported_not_indexed_empty(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (400, 300), "white").save(tmp_path / "blank.png")
    with pytest.raises(DocumentReadError, match="no text recognised"):
        read(tmp_path / "blank.png")


def test_without_tesseract_a_scanned_pdf_or_image_is_reported_with_the_reason(
    tmp_path: Path, without_tesseract: None
) -> None:
    scanned = tmp_path / "scan.pdf"
    office_factory.scanned_pdf(scanned)  # pdfium and Pillow need no tesseract
    with pytest.raises(
        DocumentReadError, match="tesseract is not installed.*apt-get install tesseract-ocr"
    ):
        read(scanned)
    image = tmp_path / "memo.png"
    image.write_bytes(b"")  # never opened: the missing engine is reported first
    with pytest.raises(DocumentReadError, match="needs OCR, but tesseract is not installed"):
        read(image)


def test_without_tesseract_the_text_pages_of_a_pdf_are_still_read(
    tmp_path: Path, without_tesseract: None
) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for source in (
        write_pdf(tmp_path / "t.pdf", ["A page with a real text layer on it."]),
        office_factory.scanned_pdf(tmp_path / "s.pdf"),
    ):
        for page in PdfReader(source).pages:
            writer.add_page(page)
    with (tmp_path / "mixed.pdf").open("wb") as handle:
        writer.write(handle)
    result = read(tmp_path / "mixed.pdf")
    assert "real text layer" in result.documents[0].text
    assert [p.path.rsplit("#", 1)[1] for p in result.problems] == ["page=2", "page=3"]
    assert all("tesseract is not installed" in p.reason for p in result.problems)


def test_xlsx_gives_one_document_per_sheet_with_its_name(tmp_path: Path) -> None:
    result = read(office_factory.xlsx_workbook(tmp_path / "book.xlsx", rows=3))
    by_sheet = {d.metadata["sheet"]: d for d in result.documents}
    assert set(by_sheet) == {"Vans", "Budget"}
    assert by_sheet["Vans"].source.endswith("book.xlsx#Vans")
    assert by_sheet["Vans"].text.splitlines()[0] == "| Vehicle | Plate | Driver | Cargo |"
    assert (
        "| Fuel | 18350.5 |" in by_sheet["Budget"].text
        and "| Tyres | 4200 |" in by_sheet["Budget"].text
    )


def test_an_empty_or_corrupt_workbook_is_reported(tmp_path: Path) -> None:
    import openpyxl

    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    with pytest.raises(DocumentReadError, match="no cell values"):
        read(tmp_path / "empty.xlsx")
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentReadError, match="corrupt or unreadable XLSX"):
        read(tmp_path / "bad.xlsx")


def test_pptx_gives_each_slide_its_title_notes_and_tables(tmp_path: Path) -> None:
    result = read(office_factory.pptx_deck(tmp_path / "deck.pptx"))
    slides = {d.metadata["slide"]: d for d in result.documents}
    assert [slides[n].metadata["section"] for n in sorted(slides)] == [
        "Harbour expansion",
        "Ferry timetable",
        "Budget",
        "Crew roster",
    ]
    assert "Notes: Mention the crane contract." in slides[1].text
    assert "| Engineer | Tomas Berg |" in slides[4].text
    assert slides[2].source.endswith("deck.pptx#slide=2")
    (tmp_path / "bad.pptx").write_bytes(b"not a deck")
    with pytest.raises(DocumentReadError, match="corrupt or unreadable PPTX"):
        read(tmp_path / "bad.pptx")


def test_eml_headers_body_and_attachments(tmp_path: Path) -> None:
    deck = office_factory.pptx_deck(tmp_path / "deck.pptx").read_bytes()
    path = office_factory.eml_message(
        tmp_path / "move.eml",
        {"keys.txt": b"Keys go to the porter.", "deck.pptx": deck, "data.bin": b"\x00"},
    )
    result = read(path)
    body = result.documents[0]
    assert (
        body.metadata["title"] == "Depot move"
        and body.metadata["author"] == "Ana Ruiz <ana@example.org>"
    )
    assert (
        body.metadata["date"] == "2026-03-03T09:15:00+00:00"
        and body.metadata["to"] == "team@example.org"
    )
    assert "Canal Street" in body.text
    keys = next(d for d in result.documents if d.source.endswith("#attachment/keys.txt"))
    assert keys.metadata["attachment"] == "keys.txt" and keys.metadata["title"] == "Depot move"
    assert keys.source.startswith(body.source) and keys.metadata["source"] == keys.source
    assert any(d.source.endswith("#attachment/deck.pptx#slide=2") for d in result.documents)
    assert [(p.path.rsplit("#", 1)[1], "no reader" in p.reason) for p in result.problems] == [
        ("attachment/data.bin", True)
    ]
