"""Collections: separate indexes and documents in one database; keys from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from indexer.pipeline import Indexer
from rag.access.api_keys import ApiKeyStore, hash_key
from rag.collections.catalog import CollectionCatalog
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.protocols import Embedder
from rag.retrieval.retriever import Retriever
from tests.conftest import MODELS_DIR

pytestmark = pytest.mark.integration


def document_sources(store: CollectionStore) -> set[str]:
    with store.session() as repo:
        return {document.source for document, _ in repo.list_documents(limit=1000)}


def test_collections_keep_their_own_indexes_and_documents(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    alpha = CollectionStore(settings, embedder, collection="alpha")
    beta = CollectionStore(settings, embedder, collection="beta")
    Indexer(alpha).index_paths([corpus / "glacier.txt"])
    Indexer(beta).index_paths([corpus])
    # The same file is one document in each collection; each index holds only its own chunks.
    assert document_sources(alpha) == {str((corpus / "glacier.txt").resolve())}
    assert (
        str((corpus / "glacier.txt").resolve()) in document_sources(beta)
        and len(document_sources(beta)) > 5
    )
    assert alpha.index_dir != beta.index_dir
    with alpha.session() as repo:
        assert alpha.vectors.ids() == repo.all_chunk_ids()
    with beta.session() as repo:
        assert beta.vectors.ids() == repo.all_chunk_ids()
    assert not alpha.vectors.ids() & beta.vectors.ids()

    catalog = CollectionCatalog(settings, embedder)
    retriever = Retriever(catalog, settings.retrieval)
    question = "How do honeybees communicate the distance to flowers?"
    only_alpha = retriever.retrieve(question, 5, collection_names=["alpha"])
    assert {hit.chunk_id for hit in only_alpha} <= alpha.vectors.ids()
    both = retriever.retrieve(question, 5)
    assert both[0].metadata["source"].endswith("honeybees.md")
    assert retriever.retrieve(question, 5, collection_names=["nope"]) == []
    filtered = retriever.retrieve(
        question, 5, "hybrid", {"source": {"in": [str((corpus / "glacier.txt").resolve())]}}
    )
    assert {hit.chunk_id for hit in filtered} <= alpha.vectors.ids() | beta.vectors.ids()
    assert (
        all(hit.metadata["source"].endswith("glacier.txt") for hit in filtered)
        and len(filtered) >= 2
    )

    # Deleting from one collection leaves the other's copy alone.
    assert Indexer(alpha).delete_sources([str((corpus / "glacier.txt").resolve())]) == 1
    assert document_sources(alpha) == set() and alpha.vectors.size == 0
    assert str((corpus / "glacier.txt").resolve()) in document_sources(beta)
    assert beta.check(repair=False).consistent and alpha.check(repair=False).consistent
    assert catalog.collection_names() == ["alpha", "beta", "default"]
    for store in (alpha, beta):
        store.close()
    catalog.close()


def test_index_and_keys_from_the_cli(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    runner = CliRunner()
    indexed = runner.invoke(
        app, ["index", "--json", "--collection", "team-a", str(corpus / "glacier.txt")]
    )
    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.stdout.strip().splitlines()[-1])["added"] == 1
    bad = runner.invoke(app, ["index", "--collection", "Team A!", str(corpus)])
    assert bad.exit_code == 2 and "invalid collection name" in bad.output
    check = runner.invoke(app, ["check"])
    assert check.exit_code == 0, check.output
    assert {json.loads(line)["collection"] for line in check.stdout.splitlines()} == {
        "default",
        "team-a",
    }

    created = runner.invoke(
        app, ["keys", "create", "--collections", "team-a,team-b", "--name", "ci"]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("rag_") and len(key) > 40
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert [(k["name"], k["collections"], k["admin"]) for k in listed] == [
        ("ci", ["team-a", "team-b"], False)
    ]
    assert key not in json.dumps(listed) and listed[0]["prefix"] == key[:12]

    settings = Settings()
    keys = ApiKeyStore(CollectionCatalog(settings, embedder=None, migrate=False).shared.sessions)  # type: ignore[arg-type]
    principal = keys.authenticate(key)
    assert principal is not None and principal.visible(["team-a", "team-b", "team-c"]) == [
        "team-a",
        "team-b",
    ]
    assert keys.authenticate(key + "x") is None and hash_key(key) != key

    assert runner.invoke(app, ["keys", "create"]).exit_code == 2  # a plain key needs a collection
    assert runner.invoke(app, ["keys", "revoke", listed[0]["prefix"]]).exit_code == 0
    assert keys.authenticate(key) is None
    assert runner.invoke(app, ["keys", "revoke", listed[0]["prefix"]]).exit_code == 1
    admin = runner.invoke(app, ["keys", "create", "--admin"]).stdout.strip().splitlines()[-1]
    assert keys.authenticate(admin).admin  # type: ignore[union-attr]
