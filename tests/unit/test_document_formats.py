"""PDF, DOCX and CSV readers on files the tests write."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from indexer.readers import ReaderOptions, reader_for
from rag.errors import DocumentReadError
from rag.text.sections import section_metadata
from tests.pdf_factory import write_pdf


def test_pdf_pages_become_sections_with_page_numbers(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "report.pdf",
        ["Page one talks about otters.", "", "Page three is about beavers."],
        title="Rivers",
    )
    [document] = reader_for(path)(path, None).documents  # type: ignore[misc]
    assert document.metadata["title"] == "Rivers" and document.metadata["author"] == "Test Author"
    assert document.metadata["pages"] == 3
    assert "otters" in document.text and "beavers" in document.text
    assert [s.metadata["page"] for s in document.sections] == [1, 3]  # the empty page is skipped
    beaver = document.text.index("beavers")
    assert section_metadata(document.sections, beaver, beaver + 7) == {"page": 3}
    assert section_metadata(document.sections, 0, len(document.text)) == {"page": 1, "page_end": 3}


def test_encrypted_and_corrupt_pdfs_are_reported(tmp_path: Path) -> None:
    plain = write_pdf(tmp_path / "plain.pdf", ["secret text"])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt("s3cret")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as file:
        writer.write(file)
    with pytest.raises(DocumentReadError, match="encrypted"):
        reader_for(locked)(locked, None)  # type: ignore[misc]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n this is not a pdf at all")
    with pytest.raises(DocumentReadError, match="PDF"):
        reader_for(broken)(broken, None)  # type: ignore[misc]


def test_docx_paragraphs_tables_and_properties(tmp_path: Path) -> None:
    word = docx.Document()
    word.core_properties.title = "Quarterly plan"
    word.core_properties.author = "Ines"
    word.add_heading("Goals", level=1)
    word.add_paragraph("Ship the indexer before the holidays.")
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Owner", "Ines"
    path = tmp_path / "plan.docx"
    word.save(str(path))
    [document] = reader_for(path)(path, None).documents  # type: ignore[misc]
    assert document.metadata["title"] == "Quarterly plan" and document.metadata["author"] == "Ines"
    assert "Ship the indexer" in document.text and "Owner | Ines" in document.text
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DocumentReadError, match="DOCX"):
        reader_for(broken)(broken, None)  # type: ignore[misc]


def test_csv_rows_with_a_text_column_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "id,question,answer,team\nq1,How to reset?,Hold the button for 5 s.,support\nq2,Warranty?,,legal\n"
    )
    result = reader_for(path)(path, ReaderOptions(csv_text_column="answer"))  # type: ignore[misc]
    [document] = result.documents
    assert document.text == "Hold the button for 5 s."
    assert (
        document.metadata["question"] == "How to reset?" and document.metadata["team"] == "support"
    )
    assert document.source.endswith("faq.csv#q1")
    assert "empty 'answer'" in result.problems[0].reason
    with pytest.raises(DocumentReadError, match="--csv-text-column"):
        reader_for(path)(path, None)  # type: ignore[misc]


def test_csv_default_text_column_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("title;text\nOne;First note\nTwo;Second note\n")
    docs = reader_for(path)(path, None).documents  # type: ignore[misc]
    assert [(d.metadata["title"], d.text) for d in docs] == [
        ("One", "First note"),
        ("Two", "Second note"),
    ]
    assert docs[0].source.endswith("notes.csv#L2")
