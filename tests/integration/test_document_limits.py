"""Issue 18 in `rag index`'s indexer: a document over a cap is reported, its stored version kept,
the others indexed; with isolated readers the CLI path gives the same result."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.pipeline import Indexer, RunOptions
from rag.collections.store import CollectionStore
from rag.protocols import Embedder
from tests.conftest import make_settings
from tests.hostile_files import yaml_alias_bomb

pytestmark = pytest.mark.integration


def test_documents_over_the_caps_are_reported_and_their_old_version_kept(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "short.txt").write_text("Puffins nest in burrows on cliff tops.")
    (folder / "growing.txt").write_text("Gannets dive from thirty metres.")
    settings = make_settings(
        tmp_path / "data", indexing={"max_document_chunks": 2, "max_document_chars": 20_000}
    )
    store = CollectionStore(settings, embedder)
    first = Indexer(store).index_paths([folder])
    assert first.added == 2 and not first.failed

    # growing.txt now makes more chunks than allowed; big.txt has more text than allowed.
    (folder / "growing.txt").write_text(
        "Gannets dive from thirty metres into the sea after fish. " * 120
    )
    (folder / "big.txt").write_text("x " * 15_000)
    (folder / "laughs.md").write_text(yaml_alias_bomb())
    second = Indexer(store).index_paths([folder], options=RunOptions(prune=True))
    reasons = {Path(path).name: reason for path, reason in second.failed}
    assert (
        "chunks, more than 2" in reasons["growing.txt"]
        and "MAX_DOCUMENT_CHUNKS" in reasons["growing.txt"]
    )
    assert "30,000 characters, more than 20,000" in reasons["big.txt"]
    assert "aliases" in reasons["laughs.md"]
    assert second.removed == 0 and second.added == 0 and second.unchanged == 1
    with store.session() as repo:
        stored = {Path(source).name for source in repo.sources_under([str(folder.resolve())])}
    assert stored == {"short.txt", "growing.txt"}  # the old growing.txt is kept, nothing lost
    store.close()


def test_isolated_readers_index_the_same_documents(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("---\ntitle: Terns\n---\nArctic terns migrate from pole to pole.")
    (folder / "b.jsonl").write_text('{"id": "1", "text": "Skuas steal fish."}\nnot json\n')
    results = []
    for mode in ("never", "always"):
        settings = make_settings(tmp_path / f"data-{mode}", indexing={"isolate_readers": mode})
        store = CollectionStore(settings, embedder)
        report = Indexer(store).index_paths([folder])
        with store.session() as repo:
            results.append(
                (
                    report.added,
                    len(report.failed),
                    sorted(repo.sources_under([str(folder.resolve())])),
                )
            )
        store.close()
    assert results[0] == results[1] and results[0][0] == 2 and results[0][1] == 1
