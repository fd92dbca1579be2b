"""The storage contract: what every database backend must do for `CollectionStore` (one
collection: SQL + faiss + BM25) and `CollectionCatalog` (all collections), driven through the
indexer as `rag index` and the upload jobs drive them.

One class, run once per entry of tests.conftest.BACKENDS by the `database_url` fixture
(PostgreSQL is skipped with a message when RAG_TEST_POSTGRES_URL is unset). A new backend is
added there and must pass this class unchanged. The documents are small and written here, so
every expectation (counts, chunk texts, which documents a filter selects) is computed from
them in Python, not read back from a backend: both databases must give exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from indexer.pipeline import Indexer, IndexReport
from rag.collections.catalog import CollectionCatalog
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.protocols import Embedder
from rag.retrieval.filters import filter_clause
from rag.retrieval.retriever import Retriever
from rag.text.chunking import TokenChunker
from rag.text.sections import chunk_document
from rag.types import SourceDocument
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

# A paragraph long enough to need several chunks of the default 254 tokens.
LONG_TEXT = "\n\n".join(
    f"Logbook entry {i}: the keeper of the Skerryvore lighthouse trimmed the wick, wound the clockwork "
    f"that turns the lens, and noted a north-westerly gale of force {i % 12} with heavy seas on the reef."
    for i in range(40)
)

DOCUMENTS = [
    SourceDocument(
        "contract://lighthouse",
        LONG_TEXT,
        {"kind": "logbook", "author": "Ada", "year": 1844, "pages": 212.5, "reviewed": True},
    ),
    SourceDocument(
        "contract://orchard",
        "The quince orchard behind the abbey yields about 300 kilograms of fruit each October.",
        {"kind": "note", "author": "Bo", "year": 2019, "pages": 3, "reviewed": False},
    ),
    SourceDocument(
        "contract://tram",
        "Line 7 of the Zürich tram network runs every 7½ minutes between Wollishofen and Stettbach.",
        {"kind": "timetable", "author": "Cé", "year": 2021, "pages": 12},
    ),
    SourceDocument(
        "contract://fermentation",
        "Kimchi ferments for three to five days at room temperature before it is chilled.",
        {"kind": "note", "author": "Ada", "year": 2023, "pages": 7.5, "reviewed": True},
    ),
    SourceDocument(
        "contract://comet",
        "The comet's nucleus, about 4.1 kilometres across, outgassed cyanogen near perihelion.",
        {"kind": "report", "author": "Dee", "year": 2024, "reviewed": False},
    ),  # no "pages"
]
SOURCES = [document.source for document in DOCUMENTS]


def matches(metadata: dict[str, Any], filters: dict[str, Any]) -> bool:
    """The filter semantics of rag/retrieval/filters.py, in Python: a document without the
    field never matches a comparison (SQL NULL), numbers compare as numbers."""
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
        "in": lambda a, b: a in b, "nin": lambda a, b: a not in b,
    }  # fmt: skip
    for field, spec in filters.items():
        if field not in metadata:
            return False
        for operator, value in spec.items() if isinstance(spec, dict) else [("eq", spec)]:
            if not compare[operator](metadata[field], value):
                return False
    return True


@dataclass
class Backend:
    """One empty database and data dir: a catalog and a writer's store per collection."""

    settings: Settings
    embedder: Embedder
    catalog: CollectionCatalog

    def __post_init__(self) -> None:
        self.writers: dict[str, CollectionStore] = {}

    def store(self, collection: str = "alpha") -> CollectionStore:
        if collection not in self.writers:
            self.writers[collection] = self.catalog.writable_store(collection)
        return self.writers[collection]

    def indexer(self, collection: str = "alpha") -> Indexer:
        store = self.store(collection)
        chunking = self.settings.chunking
        return Indexer(
            store, TokenChunker(self.embedder, chunking.max_tokens, chunking.overlap_tokens)
        )

    def index(self, documents: list[SourceDocument], collection: str = "alpha") -> IndexReport:
        report = IndexReport()
        self.indexer(collection).index_documents(documents, report)
        assert not report.failed, report.failed
        return report

    def sources_of(
        self, chunk_ids: set[int] | list[int], collection: str = "alpha"
    ) -> dict[int, str]:
        """chunk id -> the source of its document."""
        with self.store(collection).session() as repo:
            documents = {
                document.id: document.source for document, _ in repo.list_documents(limit=1000)
            }
            return {
                chunk_id: documents[chunk.document_id]
                for chunk_id, chunk in repo.chunks_by_ids(chunk_ids).items()
            }

    def chunk_ids_by_source(self, collection: str = "alpha") -> dict[str, set[int]]:
        with self.store(collection).session() as repo:
            chunk_ids = repo.all_chunk_ids()
        by_source: dict[str, set[int]] = {}
        for chunk_id, source in self.sources_of(chunk_ids, collection).items():
            by_source.setdefault(source, set()).add(chunk_id)
        return by_source

    def assert_consistent(self, collection: str = "alpha") -> None:
        """check() agrees with SQL, faiss and BM25 as this test reads them itself."""
        store = self.store(collection)
        report = store.check(repair=False)
        with store.session() as repo:
            sql_ids = repo.all_chunk_ids()
        assert report.consistent and not report.repaired, report
        assert report.sql_chunks == report.vectors == len(sql_ids)
        assert store.vectors.ids() == store.keywords.ids() == sql_ids

    def close(self) -> None:
        for store in self.writers.values():
            store.close()
        self.catalog.close()


class TestCollectionStoreContract:
    @pytest.fixture
    def backend(self, database_url: str, tmp_path: Path, embedder: Embedder) -> Iterator[Backend]:
        settings = make_settings(tmp_path / "data", database_url)
        backend = Backend(settings, embedder, CollectionCatalog(settings, embedder))
        yield backend
        backend.close()

    def expected_chunks(self, backend: Backend, document: SourceDocument) -> list[str]:
        chunking = backend.settings.chunking
        chunker = TokenChunker(backend.embedder, chunking.max_tokens, chunking.overlap_tokens)
        return [span.text for span in chunk_document(chunker, document.text, document.sections)]

    def test_indexed_documents_keep_their_metadata_counts_and_chunk_texts(
        self, backend: Backend
    ) -> None:
        report = backend.index(DOCUMENTS)
        expected = {
            document.source: self.expected_chunks(backend, document) for document in DOCUMENTS
        }
        assert len(expected["contract://lighthouse"]) > 2  # the long one is really split
        total_chunks = sum(len(texts) for texts in expected.values())
        assert (report.added, report.updated, report.unchanged) == (len(DOCUMENTS), 0, 0)
        assert report.chunks_embedded == total_chunks

        store = backend.store()
        with store.session() as repo:
            assert repo.count_documents() == len(DOCUMENTS) and repo.count_chunks() == total_chunks
            listed = {
                document.source: (document, count)
                for document, count in repo.list_documents(limit=100)
            }
            assert set(listed) == set(SOURCES)
            for document in DOCUMENTS:
                stored, chunk_count = listed[document.source]
                assert (
                    stored.meta == document.metadata
                )  # types kept: int, float, bool, non-ASCII text
                assert chunk_count == len(expected[document.source])
                chunks = sorted(
                    repo.chunks_by_ids(c.id for c in stored.chunks).values(),
                    key=lambda c: c.ordinal,
                )
                assert [chunk.text for chunk in chunks] == expected[document.source]
                assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
                assert all(
                    document.text[chunk.start_char : chunk.end_char] == chunk.text
                    for chunk in chunks
                )
        assert store.vectors.size == store.keywords.size == total_chunks
        backend.assert_consistent()

    def test_unchanged_documents_are_not_embedded_again_and_a_changed_one_alone_is(
        self, backend: Backend
    ) -> None:
        backend.index(DOCUMENTS)
        before = backend.chunk_ids_by_source()

        again = backend.index(DOCUMENTS)
        assert (again.unchanged, again.added, again.updated, again.chunks_embedded) == (
            len(DOCUMENTS),
            0,
            0,
            0,
        )
        assert backend.chunk_ids_by_source() == before

        changed = replace(
            DOCUMENTS[1], text="The quince orchard was replanted with medlar trees in 2022."
        )
        report = backend.index([DOCUMENTS[0], changed, *DOCUMENTS[2:]])
        assert (report.updated, report.unchanged, report.added) == (1, len(DOCUMENTS) - 1, 0)
        assert report.chunks_embedded == 1
        after = backend.chunk_ids_by_source()
        for source in SOURCES:
            if source != changed.source:
                assert after[source] == before[source], (
                    source
                )  # the same rows and vectors, untouched
        assert not after[changed.source] & before[changed.source]  # its old chunks are gone
        store = backend.store()
        assert not before[changed.source] & (store.vectors.ids() | store.keywords.ids())
        with store.session() as repo:
            assert list(repo.chunk_texts(after[changed.source]).values()) == [changed.text]

        # Metadata is content too: a new value is stored and filtered on.
        relabelled = replace(DOCUMENTS[2], metadata={**DOCUMENTS[2].metadata, "year": 2025})
        report = backend.index([relabelled])
        assert (report.updated, report.chunks_embedded) == (1, 1)
        with store.session() as repo:
            selected = repo.chunk_ids_where(filter_clause({"year": 2025}))
        assert set(backend.sources_of(selected).values()) == {relabelled.source}

        retriever = Retriever(backend.catalog, backend.settings.retrieval)
        for mode in ("dense", "bm25"):
            [hit] = retriever.retrieve("When was the orchard replanted with medlar trees?", 1, mode)  # type: ignore[arg-type]
            assert hit.text == changed.text, mode
        backend.assert_consistent()

    def test_a_deleted_document_is_gone_from_sql_faiss_and_bm25(self, backend: Backend) -> None:
        backend.index(DOCUMENTS)
        retriever = Retriever(backend.catalog, backend.settings.retrieval)
        question = "How wide is the comet's nucleus and what did it outgas?"
        # The catalog's reading store is opened now and must see the writer's deletion later.
        [first] = retriever.retrieve(question, 1, "hybrid")
        by_source = backend.chunk_ids_by_source()
        assert first.chunk_id in by_source["contract://comet"]
        gone = {"contract://comet", "contract://tram"}
        gone_chunks = by_source["contract://comet"] | by_source["contract://tram"]

        # By source (as `rag delete` does) and by id (as DELETE /documents/{id} does).
        indexer = backend.indexer()
        assert indexer.delete_sources(["contract://comet"]) == 1
        with backend.store().session() as repo:
            tram_id = next(
                d.id for d, _ in repo.list_documents(limit=100) if d.source == "contract://tram"
            )
        assert indexer.delete_documents([tram_id]) == 1
        assert indexer.delete_documents([tram_id]) == 0  # already gone

        store = backend.store()
        with store.session() as repo:
            assert {d.source for d, _ in repo.list_documents(limit=100)} == set(SOURCES) - gone
            assert repo.get_document(tram_id) is None and repo.count_documents() == len(SOURCES) - 2
            assert repo.all_chunk_ids() == set().union(*by_source.values()) - gone_chunks
        assert not gone_chunks & store.vectors.ids() and not gone_chunks & store.keywords.ids()
        for reader in backend.catalog.stores(["alpha"]):  # the store that served the search above
            reader.refresh(rebuild_keywords=True)  # as a job in this process does after writing
            assert not gone_chunks & (reader.vectors.ids() | reader.keywords.ids())
        for mode in ("dense", "bm25", "hybrid"):
            hits = retriever.retrieve(question, 10, mode)  # type: ignore[arg-type]
            assert not {hit.chunk_id for hit in hits} & gone_chunks, mode
            assert hits or mode == "bm25"  # no other chunk shares a word with the question
            hits = retriever.retrieve("Zürich tram line 7 Wollishofen Stettbach", 10, mode)  # type: ignore[arg-type]
            assert set(backend.sources_of([hit.chunk_id for hit in hits]).values()).isdisjoint(
                gone
            ), mode
        backend.assert_consistent()

    @pytest.mark.parametrize(
        "filters",
        [
            pytest.param({"author": "Ada"}, id="eq-text"),
            pytest.param({"year": 2021}, id="eq-number"),
            pytest.param({"reviewed": True}, id="eq-bool"),
            pytest.param({"author": "Cé"}, id="eq-non-ascii"),
            pytest.param({"kind": {"in": ["note", "report"]}}, id="in-text"),
            pytest.param({"year": {"in": [1844, 2024, 1999]}}, id="in-number"),
            pytest.param({"pages": {"gt": 7.5}}, id="gt-int-and-float"),  # "comet" has no pages
            pytest.param({"pages": {"lte": 7.5}}, id="lte-int-and-float"),
            pytest.param({"year": {"gte": 2019, "lt": 2024}}, id="range"),
            pytest.param({"kind": {"nin": ["note"]}, "pages": {"gte": 3}}, id="nin-and-gte"),
            pytest.param({"author": {"ne": "Ada"}, "year": {"gt": 2000}}, id="ne-and-gt"),
            pytest.param({"year": {"gt": 3000}}, id="none-match"),
        ],
    )
    def test_filters_select_exactly_the_matching_documents(
        self, backend: Backend, filters: dict[str, Any]
    ) -> None:
        backend.index(DOCUMENTS)
        expected = {
            document.source for document in DOCUMENTS if matches(document.metadata, filters)
        }
        with backend.store().session() as repo:
            selected = repo.chunk_ids_where(filter_clause(filters))
        assert set(backend.sources_of(selected).values()) == expected
        assert selected == set().union(
            *[backend.chunk_ids_by_source()[s] for s in expected]
        )  # every chunk of each
        # Through the retriever: with k larger than the collection, every matching chunk, no other.
        for mode in ("dense", "bm25", "hybrid"):
            hits = Retriever(backend.catalog, backend.settings.retrieval).retrieve(
                "notes and reports", 100, mode, filters
            )  # type: ignore[arg-type]
            assert {hit.chunk_id for hit in hits} <= selected, mode
            if mode == "dense":  # dense search ranks every allowed vector
                assert {hit.chunk_id for hit in hits} == selected

    def test_check_reports_what_is_missing_and_consistent_once_repaired(
        self, backend: Backend
    ) -> None:
        backend.index(DOCUMENTS)
        backend.assert_consistent()
        store = backend.store()
        dropped = sorted(store.vectors.ids())[:2]
        store.vectors.remove(dropped)
        report = store.check(repair=False)
        assert (report.missing_vectors, report.orphan_vectors, report.consistent) == (2, 0, False)
        assert store.check(repair=True).repaired
        backend.assert_consistent()

    def test_two_collections_stay_separate(self, backend: Backend) -> None:
        # The same source in both, with different text and metadata.
        backend.index(DOCUMENTS, "alpha")
        beta_orchard = replace(
            DOCUMENTS[1],
            text="The orchard in beta grows 40 cherry trees.",
            metadata={"kind": "beta-note"},
        )
        backend.index([beta_orchard], "beta")
        assert backend.catalog.collection_names() == ["alpha", "beta", "default"]
        ids = backend.catalog.collection_ids(["alpha", "beta"])
        alpha, beta = backend.store("alpha"), backend.store("beta")
        assert (
            alpha.vectors.ids().isdisjoint(beta.vectors.ids()) and alpha.index_dir != beta.index_dir
        )

        with beta.session() as repo:
            [(stored, count)] = repo.list_documents(limit=100)
            assert (stored.source, stored.meta, count) == (
                beta_orchard.source,
                beta_orchard.metadata,
                1,
            )
        with backend.catalog.session() as repo:
            assert repo.count_documents([ids["alpha"]]) == len(DOCUMENTS)
            assert repo.count_documents([ids["beta"]]) == 1
            assert repo.count_documents() == len(DOCUMENTS) + 1

        retriever = Retriever(backend.catalog, backend.settings.retrieval)
        question = "How many cherry trees grow in the orchard?"
        only_alpha = retriever.retrieve(question, 100, "dense", collection_names=["alpha"])
        assert {hit.chunk_id for hit in only_alpha} == alpha.vectors.ids()
        [top] = retriever.retrieve(question, 1, "dense")  # every collection
        assert top.text == beta_orchard.text
        # A filter is scoped to the collections searched.
        assert retriever.retrieve(question, 10, "dense", {"kind": "beta-note"}, ["alpha"]) == []
        assert [
            h.text for h in retriever.retrieve(question, 10, "dense", {"kind": "beta-note"})
        ] == [beta_orchard.text]

        # Unchanged in alpha is not unchanged in beta, and deleting in one leaves the other.
        assert backend.index([DOCUMENTS[1]], "beta").updated == 1
        assert backend.index([DOCUMENTS[1]], "alpha").unchanged == 1
        assert backend.indexer("beta").delete_sources([DOCUMENTS[1].source]) == 1
        with backend.catalog.session() as repo:
            assert repo.count_documents([ids["beta"]]) == 0 and repo.count_documents(
                [ids["alpha"]]
            ) == len(DOCUMENTS)
        assert beta.vectors.size == 0 and alpha.vectors.size > len(DOCUMENTS)
        backend.assert_consistent("alpha")
        backend.assert_consistent("beta")
