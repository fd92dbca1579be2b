"""Markdown tables: written by readers (PDF, DOCX, HTML, spreadsheets, slides), found by the chunker.

Every reader writes a table the same way, a header row, a ``| --- |`` line and
one line per row, with a blank line before and after, so that the chunker can
split it between rows and repeat the header in every chunk of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass(frozen=True)
class TableBlock:
    """A Markdown table in a text: ``header`` spans its header and separator lines."""

    header: tuple[int, int]
    rows: tuple[tuple[int, int], ...]

    @property
    def end(self) -> int:
        return self.rows[-1][1] if self.rows else self.header[1]


def cell_text(value: object) -> str:
    """One cell on one line; a pipe inside it escaped so it does not start a new cell."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """The first row is the header. Short rows are padded; empty rows are left out."""
    cells = [[cell_text(value) for value in row] for row in rows]
    cells = [row for row in cells if any(row)]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    cells = [row + [""] * (width - len(row)) for row in cells]
    header = [value or f"column {i + 1}" for i, value in enumerate(cells[0])]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, position = [], start
    while position < end:
        newline = text.find("\n", position, end)
        stop = end if newline < 0 else newline
        spans.append((position, stop))
        position = stop + 1
    return spans


def _is_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def find_tables(text: str, start: int, end: int) -> list[TableBlock]:
    """The Markdown tables between ``start`` and ``end``: a ``|`` header line, a separator
    line, then the ``|`` lines that follow."""
    lines = _lines(text, start, end)
    tables: list[TableBlock] = []
    index = 0
    while index + 1 < len(lines):
        (h_start, _), (_, s_end) = lines[index], lines[index + 1]
        if _is_row(text[slice(*lines[index])]) and _SEPARATOR.match(text[slice(*lines[index + 1])]):
            rows = []
            index += 2
            while index < len(lines) and _is_row(text[slice(*lines[index])]):
                rows.append(lines[index])
                index += 1
            tables.append(TableBlock(header=(h_start, s_end), rows=tuple(rows)))
        else:
            index += 1
    return tables
