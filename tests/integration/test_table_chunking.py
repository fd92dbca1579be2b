"""Tables are split only between rows, with the header row repeated (real tokenizer)."""

from __future__ import annotations

import pytest

from rag.protocols import Embedder
from rag.text.chunking import TokenChunker
from rag.text.tables import markdown_table
from tests.office_factory import TABLE_HEADER, table_rows

pytestmark = pytest.mark.integration

HEADER = "| Vehicle | Plate | Driver | Cargo |\n| --- | --- | --- | --- |"
PROSE = " ".join(f"Sentence {i} of the introduction explains the register." for i in range(12))


def document(rows: int = 60) -> str:
    return f"{PROSE}\n\n{markdown_table([TABLE_HEADER, *table_rows(rows)])}\n\nAfter the table. The register ends here."


def test_every_chunk_of_a_table_starts_with_its_header_and_holds_whole_rows(
    embedder: Embedder,
) -> None:
    text = document()
    chunks = TokenChunker(embedder, max_tokens=96, overlap_tokens=24).chunk(text)
    with_rows = [c for c in chunks if "| Van " in c.text]
    assert len(with_rows) >= 4
    for chunk in with_rows:
        table_part = (
            chunk.text[chunk.text.index("| Vehicle") :] if "| Vehicle" in chunk.text else ""
        )
        assert table_part.startswith(HEADER)  # the header, repeated
        for line in table_part.splitlines():
            if line.startswith("| Van"):
                assert line.count("|") == 5 and line in text.splitlines()  # whole rows only
        assert (
            embedder.token_lengths([chunk.text])[0] <= 96 + 2
        )  # joined by a newline: a token at most
    rows = [line for c in with_rows for line in c.text.splitlines() if line.startswith("| Van")]
    assert rows == [
        line for line in text.splitlines() if line.startswith("| Van")
    ]  # each once, in order


def test_continuation_chunks_point_at_their_rows_and_do_not_overlap(embedder: Embedder) -> None:
    text = document()
    chunks = TokenChunker(embedder, max_tokens=96, overlap_tokens=24).chunk(text)
    continued = [
        c for c in chunks if c.text.startswith(HEADER) and c.start_char > text.index(HEADER)
    ]
    assert continued
    for chunk in continued:
        assert chunk.text == HEADER + "\n" + text[chunk.start_char : chunk.end_char]
    for before, after in zip(chunks, chunks[1:]):
        if after in continued:
            assert after.start_char > before.end_char  # rows are not repeated, only the header


def test_prose_still_overlaps_and_a_huge_header_is_not_repeated(embedder: Embedder) -> None:
    prose = "\n\n".join(
        f"Paragraph {i} says something about the fleet and its vans." for i in range(30)
    )
    chunks = TokenChunker(embedder, max_tokens=64, overlap_tokens=16).chunk(prose)
    assert any(after.start_char < before.end_char for before, after in zip(chunks, chunks[1:]))
    wide = markdown_table(
        [[f"column number {i}" for i in range(20)], *[[str(r)] * 20 for r in range(10)]]
    )
    chunks = TokenChunker(embedder, max_tokens=64, overlap_tokens=16).chunk(wide)
    assert len(chunks) > 1 and not chunks[1].text.startswith("| column number 0")
