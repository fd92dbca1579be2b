"""Reading one file into documents within the limits: the step every indexing path shares.

The local indexer (``pipeline.py``) and the Ray pipeline (``ray_indexing.py``) both call
:func:`read_path`, so a file gives the same documents, metadata and failures either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from indexer.limits import ReadLimits, check_document
from indexer.metadata import read_sidecar, with_metadata
from indexer.readers import ReaderOptions
from indexer.sandbox import ReaderBudget, read_file
from rag.errors import DocumentReadError
from rag.types import SourceDocument


@dataclass
class FileRead:
    """What one file gave: its documents (None if it could not be read at all), the
    problems met ((path, reason) pairs, in order) and the sources of documents refused
    over a limit (they count as seen, so pruning keeps their stored version)."""

    documents: list[SourceDocument] | None
    failed: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def absolute_path(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop cannot be resolved
        return os.path.abspath(path)


def read_path(
    path: Path,
    reader: ReaderOptions,
    metadata: dict[str, str],
    limits: ReadLimits,
    budget: ReaderBudget | None,
) -> FileRead:
    """The file's documents, with its sidecar's metadata and then ``metadata`` (``--meta``)
    merged in, each held to ``limits``; read in a child process when there is a ``budget``."""
    try:
        result = read_file(path, reader, budget)
        sidecar = read_sidecar(path, limits.metadata)
    except DocumentReadError as exc:
        return FileRead(None, [(exc.path, exc.reason)])
    except (OSError, ValueError, RecursionError) as exc:
        return FileRead(None, [(str(path), f"{type(exc).__name__}: {exc}")])
    read = FileRead([], [(problem.path, problem.reason) for problem in result.problems])
    assert read.documents is not None
    for document in result.documents:
        merged = with_metadata(document, sidecar, metadata)
        try:
            check_document(merged, limits)
        except DocumentReadError as exc:
            read.failed.append((exc.path, exc.reason))
            read.refused.append(document.source)
            continue
        read.documents.append(merged)
    return read
