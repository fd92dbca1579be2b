"""Bulk indexing: read, hash, chunk, embed, and store in SQL (vectors included).

Documents are processed in batches: one embedding call and one SQL
transaction per batch, the next batch embedding while the last one is written.
A document whose content hash is unchanged is skipped without being chunked
or embedded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexer.discovery import Discovered, discover
from indexer.limits import ReadLimits, too_many_chunks
from indexer.prefetch import prefetch
from indexer.readers import ReaderOptions
from indexer.reading import read_path
from indexer.sandbox import budget_for
from rag.collections.store import CollectionStore
from rag.protocols import Vectors
from rag.storage.repository import EmbeddedDocument
from rag.text.chunking import TokenChunker
from rag.text.sections import chunk_document
from rag.types import ChunkSpan, SourceDocument

logger = logging.getLogger(__name__)

BATCH_DOCUMENTS = 256  # one embedding call sorts a whole batch by length: less padding
OCR_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})


@dataclass
class IndexReport:
    files: int = 0
    documents: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "documents": self.documents,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "chunks_embedded": self.chunks_embedded,
            "failed": [{"path": path, "reason": reason} for path, reason in self.failed],
        }


def _absolute(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop cannot be resolved
        return os.path.abspath(path)


def _batches(documents: Iterable[SourceDocument], size: int) -> Iterator[list[SourceDocument]]:
    iterator = iter(documents)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def content_hash(document: SourceDocument) -> str:
    sections = [(s.start_char, s.metadata) for s in document.sections]
    payload = json.dumps(
        {"text": document.text, "metadata": document.metadata, "sections": sections}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RunOptions:
    metadata: dict[str, str] = field(default_factory=dict)  # --meta key=value, for every document
    prune: bool = False  # remove documents under the given paths whose source is gone
    reader: ReaderOptions = field(default_factory=ReaderOptions)


@dataclass(frozen=True)
class _PreparedBatch:
    """Changed documents of one batch, chunked, with their embedding under way."""

    documents: list[SourceDocument]
    hashes: dict[str, str]  # source -> content hash
    existing: set[str]  # sources already stored (updated rather than added)
    spans: dict[str, list[ChunkSpan]]
    vectors: Future[Vectors]


class Indexer:
    def __init__(self, store: CollectionStore, chunker: TokenChunker | None = None) -> None:
        """The chunker defaults to the store's settings, which its index manifest records."""
        self.store = store
        chunking = store.settings.chunking
        self.chunker = chunker or TokenChunker(
            store.embedder, chunking.max_tokens, chunking.overlap_tokens
        )
        self.limits = ReadLimits.from_settings(store.settings.indexing)
        self.budget = budget_for(store.settings.indexing, uploads=False)

    def index_paths(
        self,
        paths: list[Path],
        on_file: Callable[[Path], None] | None = None,
        options: RunOptions | None = None,
    ) -> IndexReport:
        found = list(discover(paths, self.store.settings.indexing.max_file_bytes))
        return self.index_found(found, on_file, options, roots=paths)

    def index_found(
        self,
        found: list[Discovered],
        on_file: Callable[[Path], None] | None = None,
        options: RunOptions | None = None,
        roots: list[Path] | None = None,
    ) -> IndexReport:
        options = options or RunOptions()
        options = replace(options, reader=replace(options.reader, limits=self.limits))
        report = IndexReport()
        seen: set[str] = set()
        unreadable: set[str] = set()
        documents = prefetch(self._read_all(found, report, on_file, options, seen, unreadable))
        self.index_documents(documents, report, finish=False)
        if options.prune:
            gone = self._pruned_sources(roots or [item.path for item in found], seen, unreadable)
            report.removed += self.store.delete_sources(gone)
        self._finish(report)
        return report

    def delete_sources(self, sources: list[str]) -> int:
        """Remove documents by source (a file's documents by its path); returns how many."""
        removed = self.store.delete_sources(self.store.sources_under(sources))
        self._finish(IndexReport(removed=removed))
        return removed

    def delete_documents(self, document_ids: list[int]) -> int:
        """Remove documents of this store's collection by id; returns how many existed."""
        removed = self.store.delete_documents(document_ids)
        self._finish(IndexReport(removed=removed))
        return removed

    def index_documents(
        self, documents: Iterable[SourceDocument], report: IndexReport, finish: bool = True
    ) -> None:
        """Batch by batch: while one batch is being embedded, the next is chunked and the
        one before is written, so the encoder is never idle waiting for SQL or the chunker."""
        in_flight: _PreparedBatch | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="indexer-embed") as encoder:
            for batch in _batches(documents, BATCH_DOCUMENTS):
                prepared = self._prepare(batch, report, encoder, in_flight)
                if in_flight:
                    self._commit(in_flight, report)
                in_flight = prepared
            if in_flight:
                self._commit(in_flight, report)
        if finish:
            self._finish(report)

    def _finish(self, report: IndexReport) -> None:
        """SQL holds everything already; a cache this process reads from is completed."""
        self.store.flush()

    def _pruned_sources(self, roots: list[Path], seen: set[str], unreadable: set[str]) -> list[str]:
        """Documents under the roots that this run did not produce and whose file did not
        fail to read (a file that failed keeps its documents: nothing is lost)."""
        candidates = self.store.sources_under([str(root.resolve()) for root in roots])
        return [s for s in candidates if s not in seen and s.split("#", 1)[0] not in unreadable]

    def _read_all(
        self,
        discovered: list[Discovered],
        report: IndexReport,
        on_file: Callable[[Path], None] | None,
        options: RunOptions,
        seen: set[str],
        unreadable: set[str],
    ) -> Iterable[SourceDocument]:
        """Files that may need OCR (PDFs, images) are read in a thread of their own, so a
        scanned PDF never holds up the reading, and so the embedding, of the other files."""
        slow: list[tuple[Path, Future[list[SourceDocument] | None]]] = []
        with ThreadPoolExecutor(1, thread_name_prefix="indexer-ocr") as ocr_reader:
            for found in discovered:
                if found.problem:
                    report.failed.append((str(found.path), found.problem))
                    unreadable.add(_absolute(found.path))
                    continue
                report.files += 1
                if found.path.suffix.lower() in OCR_SUFFIXES:
                    slow.append(
                        (
                            found.path,
                            ocr_reader.submit(self._read_file, found.path, report, options, seen),
                        )
                    )
                else:
                    yield from self._read_documents(
                        found.path,
                        self._read_file(found.path, report, options, seen),
                        on_file,
                        seen,
                        unreadable,
                    )
                while slow and slow[0][1].done():
                    path, future = slow.pop(0)
                    yield from self._read_documents(
                        path, future.result(), on_file, seen, unreadable
                    )
            for path, future in slow:
                yield from self._read_documents(path, future.result(), on_file, seen, unreadable)

    @staticmethod
    def _read_documents(
        path: Path,
        documents: list[SourceDocument] | None,
        on_file: Callable[[Path], None] | None,
        seen: set[str],
        unreadable: set[str],
    ) -> Iterator[SourceDocument]:
        if documents is None:
            unreadable.add(_absolute(path))
        for document in documents or []:
            seen.add(document.source)
            yield document
        if on_file:
            on_file(path)

    def _read_file(
        self, path: Path, report: IndexReport, options: RunOptions, seen: set[str]
    ) -> list[SourceDocument] | None:
        """The file's documents within the limits; None if the file could not be read at all.
        A document over a limit is reported and counted as seen, so pruning keeps its old version."""
        read = read_path(path, options.reader, options.metadata, self.limits, self.budget)
        report.failed.extend(read.failed)
        seen.update(read.refused)
        return read.documents

    def _prepare(
        self,
        batch: list[SourceDocument],
        report: IndexReport,
        encoder: ThreadPoolExecutor,
        in_flight: _PreparedBatch | None,
    ) -> _PreparedBatch | None:
        """Skip unchanged documents, chunk the rest and start embedding their chunks."""
        report.documents += len(batch)
        batch = list({document.source: document for document in batch}.values())
        hashes = {document.source: content_hash(document) for document in batch}
        stored = self.store.stored_hashes(list(hashes))
        if in_flight:  # written before this batch is, so its hashes count as stored
            stored.update((source, h) for source, h in in_flight.hashes.items() if source in hashes)
        changed = [d for d in batch if stored.get(d.source) != hashes[d.source]]
        report.unchanged += len(batch) - len(changed)
        if not changed:
            return None
        spans: dict[str, list[ChunkSpan]] = {}
        for document in changed:
            document_spans = chunk_document(self.chunker, document.text, document.sections)
            if len(document_spans) > self.limits.max_document_chunks:
                report.failed.append(
                    (document.source, too_many_chunks(len(document_spans), self.limits))
                )
                continue
            spans[document.source] = document_spans
        changed = [document for document in changed if document.source in spans]
        if not changed:
            return None
        texts = [span.text for document in changed for span in spans[document.source]]
        return _PreparedBatch(
            documents=changed,
            hashes={d.source: hashes[d.source] for d in changed},
            existing={d.source for d in changed if d.source in stored},
            spans=spans,
            vectors=encoder.submit(self.store.embedder.embed, texts),
        )

    def _commit(self, prepared: _PreparedBatch, report: IndexReport) -> None:
        """One transaction: the batch's documents, chunks and vectors, and the change log."""
        vectors = prepared.vectors.result()
        documents: list[EmbeddedDocument] = []
        offset = 0
        for document in prepared.documents:
            spans = prepared.spans[document.source]
            documents.append(
                EmbeddedDocument(
                    document.source,
                    prepared.hashes[document.source],
                    document.metadata,
                    tuple(spans),
                    vectors[offset : offset + len(spans)],
                )  # fmt: skip
            )
            offset += len(spans)
        written = self.store.write_documents(documents)
        report.chunks_embedded += written.chunks_written
        report.updated += written.updated
        report.added += written.added
