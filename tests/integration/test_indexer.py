"""Indexing real files into SQL (vectors included) and the caches that follow it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from cli.main import app
from indexer.pipeline import Indexer, IndexReport, RunOptions
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.errors import IndexMismatchError
from rag.retrieval.retriever import Retriever
from rag.storage.models import Chunk
from rag.text.chunking import TokenChunker
from rag.types import SourceDocument
from tests.conftest import MODELS_DIR

pytestmark = pytest.mark.integration

CORPUS_FILES = 8
CORPUS_DOCUMENTS = 10  # products.jsonl holds three


def make_indexer(settings: Settings, embedder: SentenceTransformersEmbedder) -> Indexer:
    store = CollectionStore(settings, embedder)
    return Indexer(
        store,
        TokenChunker(embedder, settings.chunking.max_tokens, settings.chunking.overlap_tokens),
    )


def test_corpus_is_indexed_and_searchable(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    indexer = make_indexer(settings, embedder)
    report = indexer.index_paths([corpus])
    assert (report.files, report.added, report.failed) == (CORPUS_FILES, CORPUS_DOCUMENTS, [])
    with indexer.store.session() as repo:
        chunk_count = repo.count_chunks()
    assert chunk_count == report.chunks_embedded == indexer.store.vectors.size
    assert chunk_count > CORPUS_DOCUMENTS  # printing.md needs several chunks

    hits = Retriever(indexer.store, settings.retrieval).retrieve(
        "How thick is the Aletsch glacier ice?", 3
    )
    assert hits[0].metadata["source"].endswith("glacier.txt")
    hits = Retriever(indexer.store, settings.retrieval).retrieve("Who decoded the bee dance?", 3)
    assert hits[0].metadata["title"] == "The honeybee waggle dance"
    indexer.store.close()


def test_rerun_embeds_nothing_and_a_changed_file_only_is_reembedded(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    indexer = make_indexer(settings, embedder)
    first = indexer.index_paths([corpus])
    again = indexer.index_paths([corpus])
    assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (
        0,
        0,
        CORPUS_DOCUMENTS,
        0,
    )

    (corpus / "glacier.txt").write_text("The Aletsch Glacier is now 19 kilometres long.\n")
    changed = indexer.index_paths([corpus])
    assert (changed.updated, changed.added, changed.chunks_embedded) == (1, 0, 1)
    with indexer.store.session() as repo:
        assert repo.count_chunks() == first.chunks_embedded == indexer.store.vectors.size
    hits = Retriever(indexer.store, settings.retrieval).retrieve(
        "How long is the Aletsch glacier?", 1
    )
    assert "19 kilometres" in hits[0].text
    indexer.store.close()


def test_bad_files_are_reported_and_the_rest_indexed(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    (corpus / "broken.jsonl").write_text("{not json\n")
    (corpus / "ignored.bin").write_bytes(b"\x00")  # unknown extension inside a folder: not ours
    (corpus / "loop.txt").symlink_to(corpus / "loop.txt")  # a symlink loop
    (corpus / "dangling.md").symlink_to(corpus / "gone.md")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to(
        corpus, target_is_directory=True
    )  # a folder loop: not followed
    (corpus / "huge.txt").write_text("big " * 300_000)  # 1.2 MB
    settings = settings.model_copy(
        update={"indexing": settings.indexing.model_copy(update={"max_file_mb": 1.0})}
    )
    report = make_indexer(settings, embedder).index_paths([corpus, corpus / "missing.txt"])
    reasons = {Path(path).name.split(":")[0]: reason for path, reason in report.failed}
    assert set(reasons) == {
        "empty.txt",
        "image.md",
        "broken.jsonl",
        "missing.txt",
        "loop.txt",
        "dangling.md",
        "huge.txt",
    }
    assert "binary" in reasons["image.md"] and "empty" in reasons["empty.txt"]
    assert "symbolic links" in reasons["loop.txt"] and "No such file" in reasons["dangling.md"]
    assert "over the size limit of 1.0 MB" in reasons["huge.txt"]
    assert report.added == CORPUS_DOCUMENTS


def test_a_damaged_cache_is_reported_and_rebuilt_from_sql(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    indexer = make_indexer(settings, embedder)
    indexer.index_paths([corpus])
    # A cache that lost vectors and holds an orphan (a crash, a folder copied from elsewhere).
    lost = sorted(indexer.store.vectors.ids())[:3]
    indexer.store.vectors.remove(lost)
    indexer.store.vectors.add([999_999], embedder.embed(["orphan"]))
    indexer.store.cache.save()
    store = CollectionStore(settings, embedder)
    report = store.check(repair=False)
    assert (report.missing_vectors, report.orphan_vectors, report.consistent) == (3, 1, False)
    assert store.check(repair=True).repaired
    assert store.check(repair=False).consistent
    assert store.vectors.ids() >= set(lost) and 999_999 not in store.vectors.ids()


@pytest.mark.parametrize("damage", ["deleted", "garbage", "behind"])
def test_a_lost_or_corrupt_cache_is_rebuilt_never_fatal(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path, damage: str
) -> None:
    indexer = make_indexer(settings, embedder)
    indexer.index_paths([corpus])
    indexer.store.cache.save()  # a reader's cache, saved
    with indexer.store.session() as repo:
        expected = repo.all_chunk_ids()
    cache_dir = indexer.store.index_dir
    if damage == "deleted":
        shutil.rmtree(cache_dir)
    elif damage == "garbage":
        (cache_dir / "vectors.faiss").write_bytes(b"not a faiss index")
    else:  # a saved cache from before the last changes: caught up from the change log
        Indexer(CollectionStore(settings, embedder)).delete_sources(
            [str((corpus / "glacier.txt").resolve())]
        )
        with indexer.store.session() as repo:
            assert (
                repo.last_change()
                > json.loads((cache_dir / "follow.json").read_text())["change_id"]
            )
            expected = repo.all_chunk_ids()
    reader = CollectionStore(settings, embedder)
    assert reader.vectors.ids() == expected == reader.keywords.ids()
    assert reader.check(repair=False).consistent


def test_the_indexer_writes_sql_only_and_readers_follow_the_change_log(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    reader = CollectionStore(settings, embedder)
    assert reader.vectors.size == 0  # this reader's cache exists, empty
    writer = make_indexer(settings, embedder)  # another process, as `rag index` would be
    writer.index_paths([corpus])
    assert writer.store._cache is None  # it never built a cache: SQL only
    with writer.store.session() as repo:
        stored = repo.all_chunk_ids()
        vectors = repo.chunk_vectors(stored)
    assert stored and all(
        vector is not None and len(vector) == 4 * embedder.dimension for vector in vectors.values()
    )
    assert reader.vectors.size == 0  # until it catches up
    assert reader.refresh() > 0 and reader.vectors.ids() == stored
    writer.delete_sources([str((corpus / "glacier.txt").resolve())])
    assert reader.refresh() > 0
    with writer.store.session() as repo:
        assert reader.vectors.ids() == repo.all_chunk_ids() < stored
    reader.flush()
    assert reader.keywords.ids() == reader.vectors.ids()


def test_chunks_stored_without_vectors_are_embedded_once_and_written_back(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    """Chunks written before SQL kept vectors (revision 0004) get them from the first cache."""
    writer = make_indexer(settings, embedder)
    writer.index_paths([corpus / "glacier.txt"])
    with writer.store.session() as repo:
        ids = repo.all_chunk_ids()
        originals = repo.chunk_vectors(ids)
        repo.session.execute(update(Chunk).where(Chunk.id.in_(ids)).values(vector=None))
    with writer.store.session() as repo:
        assert repo.count_chunks_without_vector() == len(ids)
    reader = CollectionStore(settings, embedder)
    assert reader.vectors.ids() == ids  # building its cache embedded them and wrote them back
    with reader.session() as repo:
        restored = repo.chunk_vectors(ids)
    assert set(restored) == ids and all(restored[i] is not None for i in ids)
    for i in ids:  # the same model's vectors, within float error
        before = np.frombuffer(originals[i] or b"", dtype="<f4")
        after = np.frombuffer(restored[i] or b"", dtype="<f4")
        assert float(before @ after) > 0.9999
    assert reader.check(repair=False).consistent


def test_a_collection_made_with_other_chunking_is_refused(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    """The collection's manifest lives in SQL: every replica refuses, whatever its own files."""
    make_indexer(settings, embedder).index_paths([corpus / "glacier.txt"])
    other = settings.model_copy(
        update={
            "chunking": settings.chunking.model_copy(update={"max_tokens": 100}),
            "data_dir": settings.data_dir / "another-replica",
        }
    )
    with pytest.raises(IndexMismatchError, match="chunk_max_tokens"):
        CollectionStore(other, embedder)


def test_cli_summary_json_and_exit_status(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    runner = CliRunner()
    ok = runner.invoke(app, ["index", "--json", str(corpus)])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["added"] == CORPUS_DOCUMENTS and summary["failed"] == []

    (corpus / "empty.md").write_text("")
    failed = runner.invoke(app, ["index", "--json", str(corpus)])
    assert failed.exit_code == 1
    summary = json.loads(failed.stdout.strip().splitlines()[-1])
    assert summary["unchanged"] == CORPUS_DOCUMENTS and summary["chunks_embedded"] == 0
    assert [Path(f["path"]).name for f in summary["failed"]] == ["empty.md"]

    check = runner.invoke(app, ["check"])
    assert check.exit_code == 0 and json.loads(check.stdout)["consistent"] is True

    (corpus / "glacier.txt").unlink()
    pruned = runner.invoke(app, ["index", "--json", "--prune", str(corpus)])
    assert json.loads(pruned.stdout.strip().splitlines()[-1])["removed"] == 1
    deleted = runner.invoke(app, ["delete", str(corpus / "volcano.md")])
    assert deleted.exit_code == 0 and "removed 1" in deleted.output
    assert runner.invoke(app, ["index", "--meta", "novalue", str(corpus)]).exit_code == 2


def test_prune_removes_deleted_files_and_lines_but_keeps_unreadable_ones(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    indexer = make_indexer(settings, embedder)
    indexer.index_paths([corpus])
    (corpus / "glacier.txt").unlink()
    lines = (corpus / "products.jsonl").read_text().splitlines()
    (corpus / "products.jsonl").write_text("\n".join(lines[:2]) + "\n")  # bike-x is gone
    (corpus / "honeybees.md").write_bytes(b"\x00\x01 now binary")  # unreadable: keeps its document
    report = indexer.index_paths([corpus], options=RunOptions(prune=True))
    assert report.removed == 2 and [Path(p).name for p, _ in report.failed] == ["honeybees.md"]
    with indexer.store.session() as repo:
        sources = {Path(d.source).name for d, _ in repo.list_documents(limit=100)}
        assert (
            repo.count_chunks() == indexer.store.vectors.size == len(indexer.store.keywords.ids())
        )
    assert "glacier.txt" not in sources and "products.jsonl#bike-x" not in sources
    assert {"honeybees.md", "products.jsonl#kettle-200"} <= sources
    hits = Retriever(indexer.store, settings.retrieval).retrieve(
        "Aletsch glacier Konkordiaplatz", 3
    )
    assert all("glacier" not in h.metadata["source"] for h in hits)


def test_delete_by_source_and_run_metadata(
    settings: Settings, embedder: SentenceTransformersEmbedder, corpus: Path
) -> None:
    (corpus / "glacier.txt.meta.json").write_text('{"title": "Aletsch facts", "team": "geo"}')
    indexer = make_indexer(settings, embedder)
    indexer.index_paths([corpus], options=RunOptions(metadata={"team": "all", "batch": "nightly"}))
    with indexer.store.session() as repo:
        docs = {Path(d.source).name: d.meta for d, _ in repo.list_documents(limit=100)}
    assert docs["glacier.txt"] == {"title": "Aletsch facts", "team": "all", "batch": "nightly",
                                   "source": str((corpus / "glacier.txt").resolve())}  # fmt: skip
    assert (
        docs["volcano.md"]["batch"] == "nightly"
        and docs["volcano.md"]["title"] == "Kilauea eruption report"
    )
    assert indexer.delete_sources([str((corpus / "products.jsonl").resolve())]) == 3
    assert indexer.delete_sources([str((corpus / "nothing.txt").resolve())]) == 0
    with indexer.store.session() as repo:
        assert repo.count_documents() == CORPUS_DOCUMENTS - 3
        assert repo.count_chunks() == indexer.store.vectors.size


def test_pdf_chunks_carry_their_page(
    settings: Settings, embedder: SentenceTransformersEmbedder, tmp_path: Path
) -> None:
    from tests.pdf_factory import write_pdf

    pdf = write_pdf(
        tmp_path / "manual.pdf",
        ["Unpack the box carefully.", "Descale the kettle with citric acid every month."],
        title="Kettle manual",
    )
    indexer = make_indexer(settings, embedder)
    assert indexer.index_paths([pdf]).added == 1
    [hit] = Retriever(indexer.store, settings.retrieval).retrieve(
        "descaling with citric acid", 1, "bm25"
    )
    assert (hit.metadata["page"], hit.metadata["page_end"]) == (1, 2)  # both short pages, one chunk
    assert hit.metadata["title"] == "Kettle manual"


def test_a_source_repeated_in_later_batches_is_counted_and_stored_as_written_in_order(
    settings: Settings, embedder: SentenceTransformersEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of two: batch N+1 is chunked and its hashes looked up before batch N is written,
    # so the lookup has to see batch N's documents as stored.
    monkeypatch.setattr("indexer.pipeline.BATCH_DOCUMENTS", 2)
    texts = {
        "a": "Glaciers flow downhill under their own weight.",
        "b": "Honeybees dance to show where the flowers are.",
        "c": "Sourdough rises because of wild yeast.",
    }
    documents = [
        SourceDocument("a", texts["a"], {}),
        SourceDocument("b", texts["b"], {}),
        SourceDocument("a", texts["a"], {}),  # next batch, same content: unchanged
        SourceDocument("c", texts["c"], {}),
        SourceDocument(
            "b", "Honeybees also dance to recruit nest-site scouts.", {}
        ),  # changed: updated
    ]
    indexer = make_indexer(settings, embedder)
    report = IndexReport()
    indexer.index_documents(documents, report)
    assert (report.documents, report.added, report.unchanged, report.updated) == (5, 3, 1, 1)
    assert report.chunks_embedded == 4
    with indexer.store.session() as repo:
        assert repo.count_chunks() == 3 == indexer.store.vectors.size
    hits = Retriever(indexer.store, settings.retrieval).retrieve(
        "Why do honeybees dance for scouts?", 1
    )
    assert hits[0].text == "Honeybees also dance to recruit nest-site scouts."
    indexer.store.close()
