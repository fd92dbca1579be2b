"""All the collections a process serves: one database, one embedder, a store per collection.

Stores for reading are opened on first use and kept; a writer (an ingestion job, a deletion)
gets a store of its own and writes SQL only. The reading stores' caches follow SQL's change
log: a writer in this process refreshes them at once (``refresh``), and ``follow`` polls for
what other processes and replicas wrote (``RAG_INDEXING__FOLLOW_INTERVAL_S``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rag.collections.names import validate_collection_name
from rag.collections.store import CollectionStore, SharedDatabase
from rag.config import Settings
from rag.protocols import Embedder
from rag.storage import database
from rag.storage.repository import DocumentRepository, collection_ids

logger = logging.getLogger(__name__)


class CollectionCatalog:
    def __init__(self, settings: Settings, embedder: Embedder, migrate: bool = True) -> None:
        self.settings = settings
        self.embedder = embedder
        self.shared = SharedDatabase.open(settings, migrate)
        self.engine = self.shared.engine
        self._readers: dict[str, CollectionStore] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

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
        name = validate_collection_name(collection)
        return CollectionStore(
            self.settings, self.embedder, collection=name, shared=self.shared,
            on_write=lambda run_ended: self._refresh_after_write(name, run_ended),
        )  # fmt: skip

    def _refresh_after_write(self, name: str, run_ended: bool) -> None:
        """A writer in this process: its collection's reading store sees each write at once,
        and its keyword index is rebuilt once the writer's run ends, not after every batch."""
        self.refresh([name], rebuild_keywords=run_ended)

    @contextmanager
    def session(self) -> Iterator[DocumentRepository]:
        """A repository over every collection; callers scope it by collection ids."""
        with database.session_scope(self.shared.sessions) as session:
            yield DocumentRepository(session)

    def vector_count(self) -> int:
        return sum(store.vectors.size for store in self.stores())

    def refresh(
        self, collection_names: Sequence[str] | None = None, rebuild_keywords: bool = False
    ) -> int:
        """Catch the open reading stores up with SQL now; returns the changes applied."""
        with self._lock:
            stores = [
                s
                for name, s in self._readers.items()
                if collection_names is None or name in collection_names
            ]
        return sum(store.refresh(rebuild_keywords) for store in stores)

    def follow(self, interval_s: float) -> None:
        """Poll SQL's change log for every open reading store, in a thread, until ``close``."""
        if self._follower is not None or interval_s <= 0:
            return

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    for store in self.stores():  # collections created elsewhere too
                        store.cache  # noqa: B018  # opened (loaded or built) here, not by a request
                    self.refresh()
                except Exception:  # a database hiccup: the next round tries again
                    logger.warning("following the change log failed", exc_info=True)

        self._follower = threading.Thread(target=run, name="cache-follower", daemon=True)
        self._follower.start()

    def close(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=10)
        with self._lock:
            for store in self._readers.values():
                try:
                    store.flush()  # saved now, a restart loads instead of rebuilding
                except Exception:  # best effort: a cache is never the only copy
                    logger.warning("saving the cache of %s failed", store.collection, exc_info=True)
        self.engine.dispose()

    def _open(self, name: str) -> CollectionStore:
        return CollectionStore(self.settings, self.embedder, collection=name, shared=self.shared)
