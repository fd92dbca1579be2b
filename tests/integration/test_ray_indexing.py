"""``rag index --ray``: the Ray Data pipeline against the local indexer, on a real local Ray
cluster (one per module), the real embedder, SQLite and PostgreSQL, and a local S3 (moto)."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from indexer.pipeline import Indexer, IndexReport, RunOptions
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.protocols import Embedder
from rag.storage.models import Chunk, Document
from rag.storage.repository import DocumentRepository
from tests.conftest import CORPUS_DIR, MODELS_DIR

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CORRUPT = b"\x00\x01\x02 not text at all"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """The test corpus, a corrupt file and a sidecar."""
    folder = tmp_path / "mixed"
    shutil.copytree(CORPUS_DIR, folder)
    (folder / "corrupt.md").write_bytes(CORRUPT)
    (folder / "glacier.txt.meta.json").write_text('{"title": "Aletsch facts", "team": "geo"}')
    return folder


def stored(store: CollectionStore) -> dict[str, Any]:
    """Documents (hash, metadata) and chunks (text, metadata, vector) by source, from SQL."""
    documents: dict[str, Any] = {}
    with store.session() as repo:
        rows = repo.session.execute(
            select(Document.source, Document.content_hash, Document.meta).where(
                Document.collection_id == store.collection_id
            )
        )
        for source, content_hash, meta in rows:
            documents[source] = {"hash": content_hash, "meta": meta, "chunks": {}}
        chunks = repo.session.execute(
            select(Document.source, Chunk.ordinal, Chunk.text, Chunk.meta, Chunk.vector)
            .join(Document, Chunk.document_id == Document.id)
            .where(Document.collection_id == store.collection_id)
        )
        for source, ordinal, text, meta, vector in chunks:
            assert ordinal not in documents[source]["chunks"], "a chunk stored twice"
            documents[source]["chunks"][ordinal] = (text, meta, np.frombuffer(vector, np.float32))
    return documents


def assert_same_collections(local: dict[str, Any], on_ray: dict[str, Any]) -> None:
    assert set(on_ray) == set(local)
    for source, document in local.items():
        other = on_ray[source]
        assert (other["hash"], other["meta"]) == (document["hash"], document["meta"]), source
        assert set(other["chunks"]) == set(document["chunks"]), source
        for ordinal, (text, meta, vector) in document["chunks"].items():
            assert other["chunks"][ordinal][:2] == (text, meta)
            cosine = float(vector @ other["chunks"][ordinal][2])  # both normalised
            assert cosine >= 0.999, (source, ordinal, cosine)


def sorted_failures(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((failure["path"], failure["reason"]) for failure in report["failed"])


def cli_env(monkeypatch: pytest.MonkeyPatch, data: Path, database_url: str) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    monkeypatch.setenv("RAG_DATABASE_URL", database_url)
    monkeypatch.setenv(
        "RAG_RAY__EMBED_ACTORS", "1"
    )  # one embedder load per run: the test stays short


def test_ray_matches_the_local_indexer_then_embeds_nothing_and_prunes(
    ray_cluster: None,
    database_url: str,
    embedder: Embedder,
    mixed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, models_dir=MODELS_DIR
    )
    local_store = CollectionStore(settings, embedder, collection="local")
    options = RunOptions(metadata={"batch": "nightly"})
    local = Indexer(local_store).index_paths([mixed], options=options).as_dict()

    cli_env(monkeypatch, tmp_path / "data", database_url)
    runner = CliRunner()
    args = ["index", "--json", "--meta", "batch=nightly", "-c", "onray", str(mixed), "--ray"]
    first = runner.invoke(app, args)
    assert first.exit_code == 1, first.output  # the corrupt file failed, as locally
    on_ray = json.loads(first.stdout.strip().splitlines()[-1])

    assert sorted_failures(on_ray) == sorted_failures(local)
    assert [Path(p).name for p, _ in sorted_failures(on_ray)] == ["corrupt.md"]
    assert {k: v for k, v in on_ray.items() if k != "failed"} == {
        k: v for k, v in local.items() if k != "failed"
    }
    assert on_ray["added"] == 10 and on_ray["chunks_embedded"] > 10
    ray_store = CollectionStore(settings, embedder, collection="onray")
    local_rows, ray_rows = stored(local_store), stored(ray_store)
    assert_same_collections(local_rows, ray_rows)
    glacier = ray_rows[str((mixed / "glacier.txt").resolve())]["meta"]
    assert (glacier["title"], glacier["team"], glacier["batch"]) == (
        "Aletsch facts",
        "geo",
        "nightly",
    )

    (mixed / "volcano.md").unlink()
    again = runner.invoke(app, [*args[:-1], "--prune", "--ray", "local"])
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["chunks_embedded"], summary["added"], summary["updated"]) == (0, 0, 0)
    assert (summary["unchanged"], summary["removed"]) == (9, 1)
    assert sorted_failures(summary) == sorted_failures(local)
    after = stored(ray_store)
    assert set(after) == set(ray_rows) - {str((mixed / "volcano.md").resolve())}
    local_store.close()
    ray_store.close()


def write_jsonl_corpus(folder: Path, files: int, per_file: int) -> None:
    folder.mkdir()
    for f in range(files):
        lines = [
            json.dumps({"id": f"{f}-{i}", "text": f"Record {f}-{i} about glaciers number {i}."})
            for i in range(per_file)
        ]
        (folder / f"part{f}.jsonl").write_text("\n".join(lines) + "\n")


# PostgreSQL only (the production store; the write path itself runs on both in the test above).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_run_killed_in_the_write_stage_leaves_whole_documents_and_a_rerun_completes_it(
    ray_cluster: None,
    database_url: str,
    embedder: Embedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from indexer.ray_indexing import RayIndexer

    corpus = tmp_path / "corpus"
    write_jsonl_corpus(corpus, files=3, per_file=10)
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, models_dir=MODELS_DIR
    )
    settings = settings.model_copy(
        update={"ray": settings.ray.model_copy(update={"batch_documents": 4})}
    )
    store = CollectionStore(settings, embedder)

    calls = {"n": 0}
    original = DocumentRepository.replace_documents

    def dies_in_the_second_batch(self: DocumentRepository, *args: Any, **kwargs: Any) -> Any:
        written = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch's rows are in, its transaction not committed
            raise SystemExit("killed")
        return written

    monkeypatch.setattr(DocumentRepository, "replace_documents", dies_in_the_second_batch)
    with pytest.raises(SystemExit):
        RayIndexer(store).index([str(corpus)])
    assert len(stored(store)) == 4  # the first batch, whole; none of the second

    monkeypatch.setattr(DocumentRepository, "replace_documents", original)
    report: IndexReport = RayIndexer(store).index([str(corpus)])
    assert (report.added, report.unchanged, report.failed) == (26, 4, [])
    rows = stored(store)  # raises on a chunk stored twice
    assert len(rows) == 30 and all(len(document["chunks"]) == 1 for document in rows.values())
    with store.session() as repo:
        assert repo.count_documents() == 30 and repo.count_chunks() == 30
    again = RayIndexer(store).index([str(corpus)])
    assert (again.unchanged, again.chunks_embedded) == (30, 0)
    store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def test_objects_in_s3_are_indexed_like_local_files(
    ray_cluster: None, s3_endpoint: str, embedder: Embedder, mixed: Path, tmp_path: Path
) -> None:
    import boto3
    from pyarrow.fs import S3FileSystem

    from indexer.ray_indexing import RayIndexer

    keys = {"access_key": "testing", "secret_key": "testing"}
    client = boto3.client(
        "s3", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1",
        aws_access_key_id=keys["access_key"], aws_secret_access_key=keys["secret_key"],
    )  # fmt: skip
    client.create_bucket(Bucket="docs")
    for path in sorted(mixed.iterdir()):
        client.put_object(Bucket="docs", Key=f"handbook/{path.name}", Body=path.read_bytes())
    filesystem = S3FileSystem(
        endpoint_override=s3_endpoint, scheme="http", region="us-east-1", **keys
    )
    settings = Settings(data_dir=tmp_path / "data", models_dir=MODELS_DIR)
    local_store = CollectionStore(settings, embedder, collection="local")
    local = Indexer(local_store).index_paths([mixed])
    store = CollectionStore(settings, embedder, collection="s3")
    report = RayIndexer(store, filesystem).index(["s3://docs/handbook/"])

    assert (report.files, report.added, report.chunks_embedded) == (
        local.files, local.added, local.chunks_embedded,
    )  # fmt: skip
    assert report.failed == [
        ("s3://docs/handbook/corrupt.md", "binary content (NUL bytes) in a text file")
    ]
    local_rows, s3_rows = stored(local_store), stored(store)
    prefix = str(mixed.resolve())
    renamed = {
        "s3://docs/handbook" + source[len(prefix) :]: doc for source, doc in local_rows.items()
    }
    assert set(s3_rows) == set(renamed)
    assert "s3://docs/handbook/products.jsonl#kettle-200" in s3_rows
    for source, document in s3_rows.items():
        assert document["meta"]["source"] == source
        assert prefix not in json.dumps(document["meta"])  # no temporary path leaks
        assert [c[0] for c in document["chunks"].values()] == [
            c[0] for c in renamed[source]["chunks"].values()
        ]
    assert s3_rows["s3://docs/handbook/glacier.txt"]["meta"]["title"] == "Aletsch facts"
    assert RayIndexer(store, filesystem).index(["s3://docs/handbook"]).chunks_embedded == 0
    local_store.close()
    store.close()
