"""CSV: one document per row; one column is the text, the others become metadata.

The text column is ``--csv-text-column`` or, by default, the first of
``text``, ``content``, ``body``. A row's identity is ``FILE#<id column>`` when
the table has an ``id`` column, else ``FILE#L<line>``.

A row whose text is longer than the per-document cap, or whose other columns
make metadata over the metadata limit, is reported and the other rows are read.
The csv module's own field limit (131,072 characters) would instead stop the
whole file at the first long field; it is raised to the size of the file, which
``RAG_INDEXING__MAX_FILE_MB`` already bounds.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from indexer.limits import check_metadata, text_too_long
from indexer.readers.base import ReaderOptions, ReadResult, read_text_file, source_id
from rag.errors import DocumentReadError
from rag.types import SourceDocument

DEFAULT_TEXT_COLUMNS = ("text", "content", "body")


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    limits = (options or ReaderOptions()).limits
    content = read_text_file(path)
    if csv.field_size_limit() <= len(content):
        csv.field_size_limit(len(content) + 1)  # process-wide; only ever raised
    try:
        dialect = csv.Sniffer().sniff(content[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.DictReader(io.StringIO(content), dialect=dialect)
    columns = rows.fieldnames or []
    wanted = options.csv_text_column if options and options.csv_text_column else None
    text_column = wanted or next((c for c in DEFAULT_TEXT_COLUMNS if c in columns), None)
    if text_column is None or text_column not in columns:
        raise DocumentReadError(
            str(path),
            f"no text column {wanted or DEFAULT_TEXT_COLUMNS} among {columns}; use --csv-text-column",
        )
    result = ReadResult()
    base = source_id(path)
    for line, row in enumerate(rows, start=2):
        text = (row.get(text_column) or "").strip()
        if not text:
            result.problems.append(DocumentReadError(f"{path}:{line}", f"empty {text_column!r}"))
            continue
        if len(text) > limits.max_document_chars:
            result.problems.append(
                DocumentReadError(f"{path}:{line}", text_too_long(len(text), limits))
            )
            continue
        metadata = {k: v for k, v in row.items() if k and k != text_column and v not in (None, "")}
        try:
            check_metadata(f"{path}:{line}", metadata, limits)
        except DocumentReadError as exc:
            result.problems.append(exc)
            continue
        source = f"{base}#{row['id']}" if row.get("id") else f"{base}#L{line}"
        result.documents.append(SourceDocument(source, text, {**metadata, "source": source}))
    return result
