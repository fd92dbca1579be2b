"""What every command shares: the console, logging set-up and the collection option."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from rag.collections.names import (
    DEFAULT_COLLECTION,
    InvalidCollectionName,
    validate_collection_name,
)
from rag.collections.store import CollectionStore
from rag.config import Settings
from rag.embedding.factory import make_embedder

console = Console(stderr=True)
stdout_console = Console()  # tables a user may pipe

CollectionOption = Annotated[
    str, typer.Option("--collection", "-c", help="Collection (its own vector and keyword indexes).")
]


def setup_logging(settings: Settings, with_request_ids: bool = False) -> None:
    handler: logging.Handler
    if settings.log_format == "json":
        from api.observability import JsonLogFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonLogFormatter())
    else:
        handler = RichHandler(console=console, show_path=False)
        if with_request_ids:
            handler.setFormatter(logging.Formatter("[%(request_id)s] %(message)s"))
    if with_request_ids:
        from api.observability import RequestIdFilter

        handler.addFilter(RequestIdFilter())
    logging.basicConfig(
        level=settings.log_level, format="%(message)s", handlers=[handler], force=True
    )
    for noisy in ("httpx", "sentence_transformers", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def open_store(settings: Settings, collection: str = DEFAULT_COLLECTION) -> CollectionStore:
    try:
        validate_collection_name(collection)
    except InvalidCollectionName as exc:
        raise typer.BadParameter(str(exc), param_hint="--collection") from exc
    return CollectionStore(
        settings, make_embedder(settings.embedding, settings.model_cache_dir), collection=collection
    )
