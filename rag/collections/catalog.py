"""All the collections a process serves: one database, one embedder, a store per collection.

Stores for reading are opened on first use and kept; a writer (an ingestion job,
a deletion) gets a store of its own, saves atomically, and the reading store
picks the new index up through ``refresh_if_changed`` as it would from the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rag.collections.names import validate_collection_name
from rag.collections.store import CollectionStore, SharedDatabase
from rag.config import Settings
from rag.protocols import Embedder
from rag.storage import database
from rag.storage.repository import DocumentRepository, collection_ids


class CollectionCatalog:
    def __init__(self, settings: Settings, embedder: Embedder, migrate: bool = True) -> None:
        self.settings = settings
        self.embedder = embedder
        self.shared = SharedDatabase.open(settings, migrate)
        self.engine = self.shared.engine
        self._readers: dict[str, CollectionStore] = {}
        self._lock = threading.Lock()

    def collection_names(self) -> list[str]:
        with database.session_scope(self.shared.sessions) as session:
            return sorted(collection_ids(session))

    def collection_ids(self, names: Sequence[str] | None = None) -> dict[str, int]:
        with database.session_scope(self.shared.sessions) as session:
            return collection_ids(session, names)

    def stores(self, collection_names: Sequence[str] | None = None) -> list[CollectionStore]:
        """Reading stores of the named collections that exist (all when None), opened once.
        Collections are never removed, so names whose store is open need no query."""
        if collection_names is not None and all(name in self._readers for name in collection_names):
            wanted = list(collection_names)
        else:
            existing = self.collection_names()
            wanted = (
                existing
                if collection_names is None
                else [name for name in collection_names if name in existing]
            )
        with self._lock:
            for name in wanted:
                if name not in self._readers:
                    self._readers[name] = self._open(name)
            return [self._readers[name] for name in wanted]

    def writable_store(self, collection: str) -> CollectionStore:
        """A store of its own for changing one collection (created if new); close it after."""
        return self._open(validate_collection_name(collection))

    @contextmanager
    def session(self) -> Iterator[DocumentRepository]:
        """A repository over every collection; callers scope it by collection ids."""
        with database.session_scope(self.shared.sessions) as session:
            yield DocumentRepository(session)

    def vector_count(self) -> int:
        stores = self.stores()
        for store in stores:
            store.refresh_if_changed()
        return sum(store.vectors.size for store in stores)

    def close(self) -> None:
        self.engine.dispose()

    def _open(self, name: str) -> CollectionStore:
        return CollectionStore(self.settings, self.embedder, collection=name, shared=self.shared)
