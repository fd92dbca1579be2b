"""Spreadsheets (.xlsx, openpyxl in read-only mode): one document per sheet.

A sheet's rows become one Markdown table (its first non-empty row is the
header), which the chunker splits between rows, repeating the header. The
sheet's name is metadata (``sheet``) and its identity is ``FILE#<sheet>``.
Formulas give their last computed value.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from indexer.readers.archive import check_archive
from indexer.readers.base import ReaderOptions, ReadResult, source_id
from rag.errors import DocumentReadError
from rag.text.tables import markdown_table
from rag.types import SourceDocument


def cell_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def sheet_rows(worksheet: Any) -> list[list[str]]:
    rows = [[cell_value(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    rows = [row for row in rows if any(value.strip() for value in row)]
    width = max((max(i for i, v in enumerate(row) if v.strip()) + 1 for row in rows), default=0)
    return [row[:width] for row in rows]


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    check_archive(path, (options or ReaderOptions()).limits.archive, kind="XLSX")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable XLSX: {exc}") from exc
    try:
        title = workbook.properties.title if workbook.properties else None
        base, result = source_id(path), ReadResult()
        for worksheet in workbook.worksheets:
            text = markdown_table(sheet_rows(worksheet))
            if not text:
                continue
            source = f"{base}#{worksheet.title}"
            metadata = {
                **({"title": title} if title else {}),
                "sheet": worksheet.title,
                "source": source,
            }
            result.documents.append(SourceDocument(source=source, text=text, metadata=metadata))
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable XLSX: {exc}") from exc
    finally:
        workbook.close()
    if not result.documents:
        raise DocumentReadError(str(path), "no cell values in any sheet")
    return result
