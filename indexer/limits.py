"""The work one document may cost: metadata, archive expansion, text, chunks, time and memory.

Built once from ``IndexingSettings`` and handed to the readers (through
``ReaderOptions``) and to the indexer. Every message names the setting to raise,
so a user whose honest document hits a limit knows what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from indexer.metadata_limits import MetadataLimitError, MetadataLimits, validate_metadata
from rag.errors import DocumentReadError
from rag.types import SourceDocument

if TYPE_CHECKING:
    from rag.config import IndexingSettings


@dataclass(frozen=True)
class ArchiveLimits:
    """Zip-based formats (DOCX, XLSX, PPTX, EPUB, ODT): checked before any parser unpacks them."""

    max_unpacked_bytes: int = 200_000_000  # RAG_INDEXING__MAX_ARCHIVE_MB
    max_ratio: float = 100.0  # RAG_INDEXING__MAX_COMPRESSION_RATIO
    max_members: int = 10_000  # RAG_INDEXING__MAX_ARCHIVE_MEMBERS


@dataclass(frozen=True)
class ReadLimits:
    metadata: MetadataLimits = field(default_factory=MetadataLimits)
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    yaml_max_aliases: int = 20  # RAG_INDEXING__YAML_MAX_ALIASES
    max_document_chars: int = 10_000_000  # RAG_INDEXING__MAX_DOCUMENT_CHARS
    max_document_chunks: int = 20_000  # RAG_INDEXING__MAX_DOCUMENT_CHUNKS

    @classmethod
    def from_settings(cls, indexing: IndexingSettings) -> ReadLimits:
        return cls(
            metadata=MetadataLimits(
                int(indexing.max_metadata_kb * 1024), indexing.max_metadata_depth
            ),
            archive=ArchiveLimits(
                int(indexing.max_archive_mb * 1_000_000),
                indexing.max_compression_ratio,
                indexing.max_archive_members,
            ),
            yaml_max_aliases=indexing.yaml_max_aliases,
            max_document_chars=indexing.max_document_chars,
            max_document_chunks=indexing.max_document_chunks,
        )


def text_too_long(length: int, limits: ReadLimits) -> str:
    return (
        f"extracted text has {length:,} characters, more than {limits.max_document_chars:,}; "
        "split the document or raise RAG_INDEXING__MAX_DOCUMENT_CHARS"
    )


def too_many_chunks(count: int, limits: ReadLimits) -> str:
    return (
        f"the document makes {count:,} chunks, more than {limits.max_document_chunks:,}; "
        "split the document or raise RAG_INDEXING__MAX_DOCUMENT_CHUNKS"
    )


def check_metadata(where: str, metadata: object, limits: ReadLimits) -> None:
    """``validate_metadata`` with the failure reported as a read error of ``where``."""
    try:
        validate_metadata(metadata, limits.metadata)
    except MetadataLimitError as exc:
        raise DocumentReadError(where, str(exc)) from exc


def check_document(document: SourceDocument, limits: ReadLimits) -> None:
    """The per-document caps every reader's output must meet (applied after any reader)."""
    if len(document.text) > limits.max_document_chars:
        raise DocumentReadError(document.source, text_too_long(len(document.text), limits))
    check_metadata(document.source, document.metadata, limits)
