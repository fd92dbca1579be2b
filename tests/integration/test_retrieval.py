"""Dense, BM25 and hybrid retrieval, metadata filters and the reranking stage."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.pipeline import Indexer
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.embedding.embedder import SentenceTransformersEmbedder
from rag.retrieval.filters import FilterError
from rag.retrieval.fusion import reciprocal_rank_fusion
from rag.retrieval.reranking import CrossEncoderReranker
from rag.retrieval.retriever import Retriever
from rag.text.chunking import TokenChunker
from tests.conftest import BACKENDS, CORPUS_DIR, fresh_database, make_settings

pytestmark = pytest.mark.integration

TOPICS = [
    "volcano lava eruption",
    "bee pollen hive",
    "glacier ice melt",
    "bread yeast dough",
    "rover mars crater",
]


def write_catalogue(folder: Path) -> Path:
    """40 short records: 8 per topic, years 2016..2025, two authors, numeric pages."""
    path = folder / "catalogue.jsonl"
    lines = []
    for i in range(40):
        topic = TOPICS[i % len(TOPICS)]
        lines.append(json.dumps({
            "id": f"r{i}",
            "text": f"Record {i} is a report about {topic}. It was catalogued as item {i}.",
            "metadata": {"year": 2016 + i % 10, "date": f"{2016 + i % 10}-0{1 + i % 9}-15",
                         "author": "Ada" if i % 2 else "Bo", "pages": i, "reviewed": i % 3 == 0},
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def indexed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceTransformersEmbedder,
) -> Iterator[tuple[CollectionStore, Path]]:
    """The test corpus and a catalogue, indexed once per database backend for this module."""
    folder = tmp_path_factory.mktemp("retrieval")
    corpus = folder / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    with fresh_database(request.param, folder) as url:
        settings = make_settings(folder / "data", url)
        store = CollectionStore(settings, embedder)
        chunker = TokenChunker(
            embedder, settings.chunking.max_tokens, settings.chunking.overlap_tokens
        )
        report = Indexer(store, chunker).index_paths([corpus, write_catalogue(folder)])
        assert not report.failed
        yield store, corpus
        store.close()


@pytest.fixture
def store(indexed: tuple[CollectionStore, Path]) -> CollectionStore:
    return indexed[0]


@pytest.fixture
def settings(store: CollectionStore) -> Settings:
    return store.settings


@pytest.fixture
def corpus(indexed: tuple[CollectionStore, Path]) -> Path:
    return indexed[1]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_the_document(
    store: CollectionStore, settings: Settings, mode: str
) -> None:
    hits = Retriever(store, settings.retrieval).retrieve(
        "Konkordiaplatz glacier ice thickness", 3, mode
    )  # type: ignore[arg-type]
    assert hits and hits[0].metadata["source"].endswith("glacier.txt")


def test_keyword_index_follows_sql(store: CollectionStore) -> None:
    with store.session() as repo:
        assert store.keywords.ids() == repo.all_chunk_ids() == store.vectors.ids()
    store.keywords.build([])  # a stale keyword index, as after a crash
    store.keywords.save()
    report = store.check(repair=True)
    assert report.keyword_index_stale and report.repaired
    assert store.check(repair=False).consistent


def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion(
        [([(1, 0.9), (2, 0.8), (3, 0.7)], 1.0), ([(3, 9.0), (1, 5.0)], 1.0)], k=60
    )
    assert [chunk_id for chunk_id, _ in fused] == [1, 3, 2]


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        ({"author": "Ada"}, lambda m: m["author"] == "Ada"),
        ({"year": {"gte": 2023}}, lambda m: m["year"] >= 2023),
        (
            {"date": {"gte": "2020-01-01", "lt": "2022-01-01"}},
            lambda m: "2020-01-01" <= m["date"] < "2022-01-01",
        ),
        ({"pages": {"in": [3, 5, 7, 9, 11, 13]}}, lambda m: m["pages"] in {3, 5, 7, 9, 11, 13}),
        (
            {"author": {"ne": "Ada"}, "reviewed": True},
            lambda m: m["author"] == "Bo" and m["reviewed"],
        ),
        (
            {"year": {"nin": [2016, 2017]}, "pages": {"lte": 30}},
            lambda m: m["year"] > 2017 and m["pages"] <= 30,
        ),
    ],
)
@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_filters_return_k_matching_chunks(
    store: CollectionStore,
    settings: Settings,
    filters: dict[str, object],
    check,
    mode: str,  # type: ignore[no-untyped-def]
) -> None:
    # The query favours the unfiltered corpus: a post-filter would return fewer than k.
    hits = Retriever(store, settings.retrieval).retrieve(
        "report about the glacier ice and volcano lava", 5, mode, filters
    )  # type: ignore[arg-type]
    assert len(hits) == 5 and all(check(hit.metadata) for hit in hits)


def test_filter_on_source_membership(
    store: CollectionStore, settings: Settings, corpus: Path
) -> None:
    wanted = [str((corpus / "glacier.txt").resolve()), str((corpus / "honeybees.md").resolve())]
    hits = Retriever(store, settings.retrieval).retrieve(
        "anything at all", 5, "hybrid", {"source": {"in": wanted}}
    )
    assert {hit.metadata["source"] for hit in hits} == set(wanted)


@pytest.mark.parametrize(
    ("filters", "message"),
    [({"year": {"between": [1, 2]}}, "unknown operator"), ({"year": {"in": []}}, "non-empty list"),
     ({"year": {}}, "no operator"), ({"year": {"eq": [1]}}, "strings, numbers or booleans")],
)  # fmt: skip
def test_invalid_filters_are_explained(
    store: CollectionStore, settings: Settings, filters: dict[str, object], message: str
) -> None:
    with pytest.raises(FilterError, match=message):
        Retriever(store, settings.retrieval).retrieve("q", 3, "dense", filters)


def build_cross_encoder(folder: Path, embedder: SentenceTransformersEmbedder) -> Path:
    """A tiny, untrained cross-encoder: the stage is tested, not a model's quality."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(Settings().embedding.model_path)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_reorders_the_candidates_by_its_own_scores(
    store: CollectionStore,
    settings: Settings,
    embedder: SentenceTransformersEmbedder,
    tmp_path: Path,
) -> None:
    reranker = CrossEncoderReranker(str(build_cross_encoder(tmp_path / "ce", embedder)))
    plain = Retriever(store, settings.retrieval).retrieve("volcano lava", 30, "hybrid")
    reranked = Retriever(store, settings.retrieval, reranker).retrieve("volcano lava", 5, "hybrid")
    assert len(reranked) == 5
    assert [c.score for c in reranked] == sorted((c.score for c in reranked), reverse=True)
    expected = reranker.rerank("volcano lava", plain, 5)
    assert [c.chunk_id for c in reranked] == [c.chunk_id for c in expected]
