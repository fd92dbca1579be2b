"""Bulk indexing on Ray: the local indexer's readers, chunker and embedder as a Ray Data pipeline.

Stages, each running the same code as ``pipeline.py``:

1. listing: one task per root (``discover`` for a folder, pyarrow's file system for an
   ``s3://``-style URL), on the driver's order;
2. reading: one task per file (``reading.read_path``: readers, sidecar, ``--meta``, limits,
   OCR); each document's content hash is computed there and a document whose hash is
   stored already leaves the pipeline as a marker row, so it is never chunked or embedded;
3. chunking and embedding: an actor pool (``RAG_RAY__EMBED_ACTORS``), each actor loading
   the embedder once (a GPU each when the cluster has GPUs);
4. writing: the driver collects the embedded documents and writes them through
   ``CollectionStore.write_documents`` (the local indexer's write path), ``batch_documents``
   at a time. One transaction holds whole documents with their chunks and vectors, so a run
   killed at any point leaves no partial document, and the next run skips what was written.

An object is read as bytes into a temporary folder (with its ``.meta.json`` sidecar, if the
store has one) and handed to the same readers; its documents' sources are its URL.
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import ray
import ray.data

from indexer.discovery import discover
from indexer.limits import ReadLimits, too_many_chunks
from indexer.metadata import SIDECAR_SUFFIX
from indexer.pipeline import IndexReport, RunOptions, content_hash
from indexer.readers import ReaderOptions, reader_for
from indexer.reading import FileRead, absolute_path, read_path
from indexer.sandbox import ReaderBudget, budget_for
from rag.collections.store import CollectionStore
from rag.config import ChunkingSettings, EmbeddingSettings, RaySettings
from rag.embedding.factory import make_embedder
from rag.errors import RAGError
from rag.protocols import Embedder
from rag.storage.repository import EmbeddedDocument
from rag.text.chunking import TokenChunker
from rag.text.sections import chunk_document
from rag.types import ChunkSpan, Section, SourceDocument

logger = logging.getLogger(__name__)

LOCAL = ("", "local")
_HASH_LOOKUP = 2000  # sources per SQL query for stored hashes

# Every row between the stages has these columns; ``kind`` says which matter.
#   failed: a (path, reason) of the report      unreadable: a file that could not be read (path)
#   seen: a source refused over a limit         unchanged: a document whose hash is stored
#   document: a changed document                too_many: a document over the chunk limit
#   file: a file is done (progress)
_ROW = {"kind": "", "index": 0, "seq": 0, "source": "", "path": "", "reason": "", "hash": ""}
_READ_SCHEMA = pa.schema(
    [("kind", pa.string()), ("index", pa.int64()), ("seq", pa.int64()), ("source", pa.string()),
     ("path", pa.string()), ("reason", pa.string()), ("hash", pa.string()),
     ("document", pa.large_string())]
)  # fmt: skip
_EMBEDDED_SCHEMA = pa.schema(
    [field for field in _READ_SCHEMA if field.name != "document"]
    + [
        ("metadata", pa.large_string()),
        ("spans", pa.large_string()),
        ("vectors", pa.large_binary()),
    ]
)


def is_url(location: str) -> bool:
    """An object-store location (``s3://bucket/prefix``) rather than a local path."""
    return "://" in location


# Listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    location: str  # a local path, or an object's URL
    problem: str | None = None  # set when it cannot be indexed at all
    sidecar: bool = False  # an object with NAME.meta.json beside it


def list_root(
    root: str, max_file_bytes: int, filesystem: pafs.FileSystem | None = None
) -> list[Listed]:
    """What ``discover`` finds under a local root; for a URL, the objects under the prefix
    with a known extension (hidden names left out), in name order, over-size ones reported."""
    if not is_url(root):
        return [
            Listed(str(found.path), found.problem)
            for found in discover([Path(root)], max_file_bytes)
        ]
    scheme = root.split("://", 1)[0]
    fs, base = _filesystem(root, filesystem)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        return [Listed(root, "no such file or directory")]
    if info.type == pafs.FileType.File:
        infos = [info]
        names = {info.path}
    else:
        infos = sorted(
            (i for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
             if i.type == pafs.FileType.File),
            key=lambda i: i.path,
        )  # fmt: skip
        names = {i.path for i in infos}
    listed: list[Listed] = []
    for item in infos:
        name = PurePosixPath(item.path).name
        if info.type != pafs.FileType.File and (
            name.startswith(".") or reader_for(Path(name)) is None
        ):
            continue
        url = f"{scheme}://{item.path}"
        if reader_for(Path(name)) is None:
            listed.append(
                Listed(url, f"unsupported file type {PurePosixPath(name).suffix or '(none)'}")
            )
        elif item.size is not None and item.size > max_file_bytes:
            listed.append(Listed(url, f"{item.size / 1e6:.1f} MB is over the size limit of "
                                      f"{max_file_bytes / 1e6:.1f} MB"))  # fmt: skip
        else:
            listed.append(Listed(url, sidecar=item.path + SIDECAR_SUFFIX in names))
    return listed


def _filesystem(url: str, given: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    path = url.split("://", 1)[1].rstrip("/")
    if given is not None:
        return given, path
    return _filesystem_for(url.split("://", 1)[0], path.split("/", 1)[0]), path


@lru_cache(maxsize=16)
def _filesystem_for(scheme: str, bucket: str) -> pafs.FileSystem:
    """One file system per bucket and process (credentials from the environment)."""
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}")
    return fs


# Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadJob:
    """What every reading task needs (shipped to the tasks once per run)."""

    reader: ReaderOptions
    metadata: dict[str, str]
    limits: ReadLimits
    budget: ReaderBudget | None
    stored: dict[str, str]  # source -> content hash already in SQL (under the run's roots)
    filesystem: pafs.FileSystem | None = None


def read_rows(item: dict[str, Any], job: ReadJob) -> list[dict[str, Any]]:
    """One file's rows: its failures, then its documents (changed ones whole, unchanged ones
    as a marker), then a ``file`` row."""
    index, location = int(item["index"]), str(item["location"])
    if is_url(location):
        read = _read_object(location, bool(item["sidecar"]), job)
    else:
        read = read_path(Path(location), job.reader, job.metadata, job.limits, job.budget)
    seq = itertools.count()
    rows = [
        _row("failed", index, next(seq), path=path, reason=reason) for path, reason in read.failed
    ]
    if read.documents is None:
        unreadable = location if is_url(location) else absolute_path(Path(location))
        rows.append(_row("unreadable", index, next(seq), path=unreadable))
    rows += [_row("seen", index, next(seq), source=source) for source in read.refused]
    for document in read.documents or []:
        digest = content_hash(document)
        if job.stored.get(document.source) == digest:
            rows.append(_row("unchanged", index, next(seq), source=document.source, hash=digest))
        else:
            rows.append(
                _row("document", index, next(seq), source=document.source, hash=digest,
                     document=encode_document(document))
            )  # fmt: skip
    rows.append(_row("file", index, next(seq), path=location))
    return rows


def _row(kind: str, index: int, seq: int, document: str = "", **values: str) -> dict[str, Any]:
    return {**_ROW, "kind": kind, "index": index, "seq": seq, "document": document, **values}


def _read_object(url: str, has_sidecar: bool, job: ReadJob) -> FileRead:
    """The object's bytes in a temporary folder, read like a local file, renamed to its URL."""
    fs, path = _filesystem(url, job.filesystem)
    with tempfile.TemporaryDirectory(prefix="rag-object-") as folder:
        local = Path(folder) / PurePosixPath(path).name
        try:
            with fs.open_input_stream(path) as stream:
                local.write_bytes(stream.read())
            if has_sidecar:
                with fs.open_input_stream(path + SIDECAR_SUFFIX) as stream:
                    (Path(folder) / (local.name + SIDECAR_SUFFIX)).write_bytes(stream.read())
        except OSError as exc:
            return FileRead(None, [(url, f"unreadable: {exc}")])
        read = read_path(local, job.reader, job.metadata, job.limits, job.budget)
        saved = [str(local.resolve()), str(local)]

    def renamed(text: str) -> str:
        for prefix in saved:
            if text.startswith(prefix):
                return url + text[len(prefix) :]
        return text

    documents = None
    if read.documents is not None:
        documents = []
        for document in read.documents:
            source = renamed(document.source)
            metadata = {k: v for k, v in document.metadata.items() if v not in saved}
            documents.append(
                replace(document, source=source, metadata={**metadata, "source": source})
            )
    return FileRead(
        documents,
        [(renamed(path), reason.replace(saved[0], url)) for path, reason in read.failed],
        [renamed(source) for source in read.refused],
    )


def encode_document(document: SourceDocument) -> str:
    return json.dumps(
        {
            "source": document.source,
            "text": document.text,
            "metadata": document.metadata,
            "sections": [[s.start_char, s.metadata] for s in document.sections],
        }
    )


def decode_document(encoded: str) -> SourceDocument:
    data = json.loads(encoded)
    sections = tuple(Section(start, metadata) for start, metadata in data["sections"])
    return SourceDocument(data["source"], data["text"], data["metadata"], sections)


# Chunking and embedding ------------------------------------------------------------------


class ChunkEmbedder:
    """An actor of the pool: loads the embedder once, then chunks and embeds batches of rows
    (rows other than changed documents pass through)."""

    def __init__(
        self,
        embedding: EmbeddingSettings,
        chunking: ChunkingSettings,
        cache_dir: Path,
        limits: ReadLimits,
        threads: int,
    ) -> None:
        if ray.get_gpu_ids():
            embedding = embedding.model_copy(update={"backend": "torch", "device": "cuda"})
        elif embedding.workers == 0:
            embedding = embedding.model_copy(update={"workers": threads})
        self.embedder: Embedder = make_embedder(embedding, cache_dir)
        self.embedder.warm_up()
        self.chunker = TokenChunker(self.embedder, chunking.max_tokens, chunking.overlap_tokens)
        self.limits = limits

    def __call__(self, batch: pa.Table) -> pa.Table:
        out: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], SourceDocument, list[ChunkSpan]]] = []
        for row in batch.to_pylist():
            encoded = row.pop("document")
            if row["kind"] != "document":
                out.append({**row, "metadata": "", "spans": "", "vectors": b""})
                continue
            document = decode_document(encoded)
            spans = chunk_document(self.chunker, document.text, document.sections)
            if len(spans) > self.limits.max_document_chunks:
                reason = too_many_chunks(len(spans), self.limits)
                out.append({**row, "kind": "too_many", "path": document.source, "reason": reason,
                            "metadata": "", "spans": "", "vectors": b""})  # fmt: skip
                continue
            pending.append((row, document, spans))
        vectors = self.embedder.embed([span.text for _, _, spans in pending for span in spans])
        offset = 0
        for row, document, spans in pending:
            own = np.ascontiguousarray(vectors[offset : offset + len(spans)], dtype=np.float32)
            offset += len(spans)
            out.append(
                {**row, "metadata": json.dumps(document.metadata), "spans": encode_spans(spans),
                 "vectors": own.tobytes()}
            )  # fmt: skip
        return pa.Table.from_pylist(out, schema=_EMBEDDED_SCHEMA)


def encode_spans(spans: Sequence[ChunkSpan]) -> str:
    return json.dumps(
        [[s.ordinal, s.text, s.start_char, s.end_char, s.token_count, s.metadata] for s in spans]
    )


def decode_spans(encoded: str) -> tuple[ChunkSpan, ...]:
    return tuple(ChunkSpan(*values) for values in json.loads(encoded))


# The driver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterPlan:
    actors: int
    actor_cpus: float
    actor_gpus: float
    threads: int  # encoder threads per CPU actor


def plan_cluster(settings: RaySettings) -> ClusterPlan:
    """Actors and their resources for the connected cluster."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    cpus, gpus = float(resources.get("CPU", 1.0)), int(resources.get("GPU", 0))
    if gpus:
        actors = min(settings.embed_actors, gpus)
        if actors < settings.embed_actors:
            logger.warning(
                "%d GPUs for %d embedder actors: %d actors", gpus, settings.embed_actors, actors
            )
        return ClusterPlan(actors, settings.embed_actor_cpus or 1.0, 1.0, 1)
    # Leave a quarter of the CPUs to the reading tasks, or the actors would starve them.
    share = settings.embed_actor_cpus or max(0.1, min(1.0, 0.75 * cpus / settings.embed_actors))
    return ClusterPlan(settings.embed_actors, share, 0.0, max(1, round(share)))


@dataclass
class _Run:
    """What the driver gathers from the rows while it writes."""

    report: IndexReport
    seen: set[str]
    unreadable: set[str]
    failures: list[tuple[int, int, str, str]]  # (file index, order in file, path, reason)
    written: dict[str, str]  # source -> hash written by this run
    pending: dict[str, EmbeddedDocument]


class RayIndexer:
    """``rag index --ray``: same report and semantics as :class:`indexer.pipeline.Indexer`."""

    def __init__(self, store: CollectionStore, filesystem: pafs.FileSystem | None = None) -> None:
        """``filesystem`` reads the URLs (default: pyarrow's for the URL's scheme)."""
        self.store = store
        self.settings = store.settings.ray
        self.filesystem = filesystem
        self.limits = ReadLimits.from_settings(store.settings.indexing)

    def index(
        self,
        roots: Sequence[str],
        options: RunOptions | None = None,
        on_file: Callable[[str], None] | None = None,
        on_listed: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Index local paths and object-store URLs on the connected cluster (``connect``)."""
        options = options or RunOptions()
        options = replace(options, reader=replace(options.reader, limits=self.limits))
        if not ray.is_initialized():
            raise RAGError("no Ray cluster: call indexer.ray_indexing.connect() first")
        listed = self._list(roots)
        run = _Run(IndexReport(), set(), set(), [], {}, {})
        items: list[dict[str, Any]] = []
        for index, entry in enumerate(listed):
            if entry.problem:
                run.failures.append((index, 0, entry.location, entry.problem))
                run.unreadable.add(
                    entry.location
                    if is_url(entry.location)
                    else absolute_path(Path(entry.location))
                )
            else:
                items.append({"index": index, "location": entry.location, "sidecar": entry.sidecar})
        run.report.files = len(items)
        if on_listed:
            on_listed(len(items))
        prefixes = [self._prefix(root) for root in roots]
        prefixes += [
            absolute_path(Path(item["location"]))
            for item in items
            if not is_url(item["location"])
            and not _under(absolute_path(Path(item["location"])), prefixes)
        ]  # a symlinked file: its source is where it points
        job = ReadJob(
            reader=options.reader,
            metadata=options.metadata,
            limits=self.limits,
            budget=budget_for(self.store.settings.indexing, uploads=False),
            stored=self._stored_hashes(prefixes),
            filesystem=self.filesystem,
        )
        if items:
            with closing(self._rows(items, job)) as rows:  # a failure stops the pipeline
                for row in rows:
                    self._take(row, run, on_file)
            self._write(run)
        run.failures.sort(key=lambda failure: failure[:2])
        run.report.failed = [(path, reason) for _, _, path, reason in run.failures]
        if options.prune:
            gone = [
                source
                for source in self.store.sources_under(prefixes[: len(roots)])
                if source not in run.seen and source.split("#", 1)[0] not in run.unreadable
            ]
            run.report.removed += self.store.delete_sources(gone)
        self.store.flush()
        return run.report

    def _list(self, roots: Sequence[str]) -> list[Listed]:
        lister = ray.remote(num_cpus=self.settings.read_task_cpus)(list_root)
        max_bytes = self.store.settings.indexing.max_file_bytes
        listings = ray.get([lister.remote(root, max_bytes, self.filesystem) for root in roots])
        return [entry for listing in listings for entry in listing]

    @staticmethod
    def _prefix(root: str) -> str:
        return root.rstrip("/") if is_url(root) else absolute_path(Path(root))

    def _stored_hashes(self, prefixes: list[str]) -> dict[str, str]:
        sources = self.store.sources_under(prefixes)
        stored: dict[str, str] = {}
        for start in range(0, len(sources), _HASH_LOOKUP):
            stored.update(self.store.stored_hashes(sources[start : start + _HASH_LOOKUP]))
        return stored

    def _rows(self, items: list[dict[str, Any]], job: ReadJob) -> Generator[dict[str, Any]]:
        plan = plan_cluster(self.settings)
        logger.info(
            "ray: %d files, %d embedder actors (%.2f CPU, %.0f GPU each)",
            len(items), plan.actors, plan.actor_cpus, plan.actor_gpus,
        )  # fmt: skip
        settings = self.store.settings
        dataset: ray.data.Dataset = ray.data.from_items(
            items, override_num_blocks=min(len(items), 1024)
        )
        dataset = dataset.flat_map(
            cast(Any, read_rows), fn_kwargs={"job": job}, num_cpus=self.settings.read_task_cpus
        )
        dataset = dataset.map_batches(
            ChunkEmbedder,
            fn_constructor_kwargs={
                "embedding": settings.embedding,
                "chunking": settings.chunking,
                "cache_dir": settings.model_cache_dir,
                "limits": self.limits,
                "threads": plan.threads,
            },
            batch_size=self.settings.embed_batch_documents,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=plan.actors),
            num_cpus=plan.actor_cpus,
            num_gpus=plan.actor_gpus,
        )
        batches = dataset.iter_batches(batch_size=None, batch_format="pyarrow")
        try:
            for batch in batches:
                yield from cast(pa.Table, batch).to_pylist()
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def _take(self, row: dict[str, Any], run: _Run, on_file: Callable[[str], None] | None) -> None:
        kind, report = row["kind"], run.report
        if kind == "failed":
            run.failures.append((row["index"], row["seq"], row["path"], row["reason"]))
        elif kind == "unreadable":
            run.unreadable.add(row["path"])
        elif kind == "seen":
            run.seen.add(row["source"])
        elif kind == "file":
            if on_file:
                on_file(row["path"])
        elif kind in ("unchanged", "too_many", "document"):
            report.documents += 1
            run.seen.add(row["source"])
            if kind == "unchanged":
                report.unchanged += 1
            elif kind == "too_many":
                run.failures.append((row["index"], row["seq"], row["path"], row["reason"]))
            elif run.written.get(row["source"]) == row["hash"]:
                report.unchanged += 1  # a source repeated in the run, unchanged since
            else:
                spans = decode_spans(row["spans"])
                vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(spans), -1)
                run.pending[row["source"]] = EmbeddedDocument(
                    row["source"], row["hash"], json.loads(row["metadata"]), spans, vectors
                )
                if len(run.pending) >= self.settings.batch_documents:
                    self._write(run)

    def _write(self, run: _Run) -> None:
        if not run.pending:
            return
        documents = list(run.pending.values())
        written = self.store.write_documents(documents)
        run.report.added += written.added
        run.report.updated += written.updated
        run.report.chunks_embedded += written.chunks_written
        run.written.update((document.source, document.content_hash) for document in documents)
        run.pending.clear()


def _under(source: str, prefixes: Sequence[str]) -> bool:
    return any(
        source == prefix or source.startswith((prefix.rstrip("/") + "/", prefix + "#"))
        for prefix in prefixes
    )


def connect(address: str, local_cpus: int = 0) -> bool:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://...``) or start a
    local one (empty or ``local``); returns whether this call started Ray (the caller then
    calls ``ray.shutdown()``). A process already connected keeps its cluster."""
    if ray.is_initialized():
        return False
    if address in LOCAL:
        ray.init(
            num_cpus=local_cpus or None, include_dashboard=False, log_to_driver=False,
            logging_level=logging.WARNING,
        )  # fmt: skip
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    return True
