"""Each reader on real files: text and metadata per format, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.readers import reader_for
from indexer.readers.base import ReadResult
from rag.errors import DocumentReadError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


def read(path: Path) -> ReadResult:
    reader = reader_for(path)
    assert reader is not None
    return reader(path)


def test_markdown_front_matter_becomes_metadata() -> None:
    [doc] = read(CORPUS / "volcano.md").documents
    assert doc.metadata["title"] == "Kilauea eruption report"
    assert doc.metadata["url"] == "https://volcano.example.org/kilauea-2023"
    assert doc.metadata["date"] == "2023-09-12"  # a YAML date, stored as ISO text
    assert doc.metadata["tags"] == ["volcano", "hawaii"]
    assert doc.metadata["source"] == str((CORPUS / "volcano.md").resolve())
    assert "---" not in doc.text and "Lava fountains" in doc.text


def test_markdown_without_front_matter_takes_its_heading_as_title() -> None:
    [doc] = read(CORPUS / "honeybees.md").documents
    assert doc.metadata["title"] == "The honeybee waggle dance"


def test_html_keeps_main_content_and_meta_tags_and_drops_boilerplate() -> None:
    [doc] = read(CORPUS / "rover.html").documents
    assert doc.metadata["title"] == "Rover finds buried ice near Jezero crater"
    assert doc.metadata["author"] == "Planetary News Desk"
    assert doc.metadata["date"] == "2024-03-05"
    assert doc.metadata["url"] == "https://planets.example.com/rover-ice"
    assert "ground-penetrating radar" in doc.text
    for boilerplate in ("Subscribe to our newsletter", "Cookie settings", "All rights reserved"):
        assert boilerplate not in doc.text


def test_html_open_graph_date() -> None:
    [doc] = read(CORPUS / "bakery.html").documents
    assert doc.metadata["date"] == "2022-11-02" and doc.metadata["author"] == "Marta Kowalska"


def test_latin1_text_is_decoded() -> None:
    [doc] = read(CORPUS / "cafe_latin1.txt").documents
    assert "fondé en 1686" in doc.text and "café" in doc.text


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("Grüße aus Köln".encode("utf-16"))
    assert read(path).documents[0].text == "Grüße aus Köln"


def test_a_byte_order_mark_over_bytes_of_another_encoding_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "fake_bom.md"
    path.write_bytes(b"\xff\xfe\x00\xd8\x00\xd8broken")  # UTF-16 BOM, then lone surrogates
    with pytest.raises(
        DocumentReadError, match="undecodable bytes: starts with a utf-16 byte-order mark"
    ):
        read(path)


def test_jsonl_lines_with_ids_and_metadata() -> None:
    docs = read(CORPUS / "products.jsonl").documents
    assert [d.metadata["sku"] for d in docs] == ["K200", "L7", "TX"]
    assert docs[0].source.endswith("products.jsonl#kettle-200")
    assert docs[2].metadata["authors"] == ["R. Diaz", "K. Ono"]


def test_jsonl_bad_lines_are_reported_and_good_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"text": "good one"}\n{broken\n[1, 2]\n{"text": ""}\n{"text": "x", "metadata": 3}\n{"text": "good two"}\n'
    )
    result = read(path)
    assert [d.text for d in result.documents] == ["good one", "good two"]
    assert [p.path.rsplit(":", 1)[1] for p in result.problems] == ["2", "3", "4", "5"]
    assert result.documents[0].source.endswith("mixed.jsonl#L1")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"   \n\n", "empty file"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("bad.md", b"---\ntitle: [unclosed\n---\nbody", "front matter"),
    ],
)
def test_bad_files_raise_a_clear_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentReadError, match=reason):
        read(path)
