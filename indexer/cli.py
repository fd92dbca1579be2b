"""The ``rag`` command: indexing, consistency checks, models, database and the server."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from indexer.discovery import Discovered, discover
from indexer.eval_commands import eval_app
from indexer.limits import ReadLimits
from indexer.metadata import parse_meta_options
from indexer.pipeline import Indexer, IndexReport, RunOptions
from indexer.readers import ReaderOptions
from rag.auth import ApiKeyStore, KeyInfo
from rag.collections import DEFAULT_COLLECTION, InvalidCollectionName, validate_collection_name
from rag.config import Settings, load_settings
from rag.embedding import make_embedder
from rag.errors import RAGError
from rag.knowledge_base import KnowledgeBase
from rag.store import KnowledgeStore, SharedDatabase

app = typer.Typer(
    help="Contextual RAG: index documents and answer questions from them.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
models_app = typer.Typer(help="Prepare the packaged models.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(eval_app, name="eval")

console = Console(stderr=True)
logger = logging.getLogger("rag.cli")


CollectionOption = Annotated[
    str, typer.Option("--collection", "-c", help="Collection (its own vector and keyword indexes).")
]


def _setup_logging(settings: Settings, with_request_ids: bool = False) -> None:
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
    logging.basicConfig(level=settings.log_level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "sentence_transformers", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _open_store(settings: Settings, collection: str = DEFAULT_COLLECTION) -> KnowledgeStore:
    try:
        validate_collection_name(collection)
    except InvalidCollectionName as exc:
        raise typer.BadParameter(str(exc), param_hint="--collection") from exc
    return KnowledgeStore(
        settings, make_embedder(settings.embedding, settings.model_cache_dir), collection=collection
    )


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove documents under PATHS whose source no longer exists.")
    ] = False,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="key=value added to every document's metadata (repeatable).")
    ] = None,
    csv_text_column: Annotated[
        str | None, typer.Option(help="CSV column holding the text (default: text, content or body).")
    ] = None,
    collection: CollectionOption = DEFAULT_COLLECTION,
) -> None:
    """Index files; unchanged documents are skipped, changed ones re-embedded.

    Metadata comes from the file (front matter, HTML meta tags, JSONL), then from a
    sidecar NAME.EXT.meta.json beside it, then from --meta options."""
    settings = load_settings()
    _setup_logging(settings)
    limits = ReadLimits.from_settings(settings.indexing)
    try:
        options = RunOptions(
            metadata=parse_meta_options(meta or [], limits.metadata),
            prune=prune,
            reader=ReaderOptions(csv_text_column=csv_text_column, limits=limits),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--meta") from exc
    try:
        store = _open_store(settings, collection)
        found = list(discover(paths, settings.indexing.max_file_bytes))
        report = _run_with_progress(Indexer(store), found, paths, options, quiet=as_json)
        store.close()
    except RAGError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _run_with_progress(
    indexer: Indexer, found: list[Discovered], roots: list[Path], options: RunOptions, quiet: bool
) -> IndexReport:
    files = [item for item in found if item.problem is None]
    progress = Progress(
        TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"), console=console, disable=quiet,
    )  # fmt: skip
    with progress:
        task = progress.add_task("files", total=len(files), current="")
        report = indexer.index_found(
            found,
            on_file=lambda path: progress.update(task, advance=1, current=path.name),
            options=options,
            roots=roots,
        )
    return report


def _print_report(report: IndexReport) -> None:
    table = Table(title="indexing summary", show_header=False)
    for label, value in [
        ("files read", report.files),
        ("documents", report.documents),
        ("added", report.added),
        ("updated", report.updated),
        ("unchanged (not re-embedded)", report.unchanged),
        ("removed", report.removed),
        ("chunks embedded", report.chunks_embedded),
        ("failed", len(report.failed)),
    ]:
        table.add_row(label, str(value))
    console.print(table)
    for path, reason in report.failed:
        console.print(f"[red]failed[/red] {path}: {reason}")


@app.command()
def delete(
    sources: Annotated[list[str], typer.Argument(help="Document sources: file paths, folders or FILE#ID.")],
    collection: CollectionOption = DEFAULT_COLLECTION,
) -> None:
    """Remove documents (and their chunks and vectors) by source."""
    settings = load_settings()
    _setup_logging(settings)
    store = _open_store(settings, collection)
    resolved = [s if "#" in s or ":" in s.split("/", 1)[0] else str(Path(s).resolve()) for s in sources]
    removed = Indexer(store).delete_sources(resolved)
    store.close()
    console.print(f"removed {removed} document(s)")
    raise typer.Exit(0 if removed else 1)


@app.command()
def check(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="One collection (default: every one).")
    ] = None,
) -> None:
    """Compare the SQL chunks with the faiss vector ids, per collection (one JSON line each)."""
    settings = load_settings()
    _setup_logging(settings)
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    knowledge = KnowledgeBase(settings, embedder)
    names = [collection] if collection else knowledge.collection_names()
    healthy = True
    for name in names:
        store = knowledge.writer(name)
        with store.writer_lock():
            report = store.check(repair=repair)
        store.close()
        healthy = healthy and (report.consistent or report.repaired)
        typer.echo(json.dumps({"collection": name} | report.__dict__ | {"consistent": report.consistent}))
    knowledge.close()
    raise typer.Exit(0 if healthy else 1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RAG_PORT).")] = None,
) -> None:
    """Run the HTTP API (and the embedded vLLM unless RAG_LLM_BASE_URL is set)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    _setup_logging(settings, with_request_ids=True)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers go through the handler above (request ids, JSON)
        access_log=False,  # the service logs each request itself, with its id
        timeout_graceful_shutdown=10,
    )


@models_app.command("prepare")
def models_prepare() -> None:
    """Convert the packaged SmolLM2 GGUF to float32 safetensors (once)."""
    from rag.llm.model_prep import prepare_generator

    settings = load_settings()
    _setup_logging(settings)
    source = Path(settings.llm.embedded_source_gguf) if settings.llm.embedded_source_gguf else None
    try:
        converted = prepare_generator(settings.embedded_generator_dir, source)
    except RAGError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    embedder.warm_up()  # type: ignore[attr-defined]  # fails now, not at serve time
    state = "prepared" if converted else "already prepared"
    console.print(f"generator {state} in {settings.embedded_generator_dir}; embedder loads")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Upgrade the database schema."""
    from rag.storage import database

    database.upgrade(load_settings().resolved_database_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = "base") -> None:
    """Downgrade the database schema (``base`` removes every table)."""
    from rag.storage import database

    database.downgrade(load_settings().resolved_database_url, revision)


def _key_store() -> ApiKeyStore:
    settings = load_settings()
    return ApiKeyStore(SharedDatabase.open(settings).sessions)


@keys_app.command("create")
def keys_create(
    collections: Annotated[
        str, typer.Option(help="Comma-separated collections the key may see and write, e.g. a,b.")
    ] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Every collection, and /metrics.")] = False,
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create a key and print it once (only its SHA-256 is stored)."""
    try:
        created = _key_store().create(name or "key", collections.split(","), admin=admin)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--collections") from exc
    scope = "admin (every collection)" if admin else ", ".join(created.info.collections)
    console.print(f"key {created.info.id} ({created.info.prefix}…) for {scope}; it is shown only now:")
    typer.echo(created.key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The keys (prefix, scope, state); never the keys themselves."""
    keys = _key_store().list()
    if as_json:
        typer.echo(json.dumps([key.__dict__ for key in keys]))
        return
    table = Table("id", "name", "prefix", "scope", "created", "revoked")
    for key in keys:
        table.add_row(str(key.id), key.name, key.prefix, _scope(key), key.created_at[:19], (key.revoked_at or "")[:19])
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id or prefix (from `rag keys list`).")]) -> None:
    """Revoke a key: it stops working at once."""
    revoked = _key_store().revoke(key)
    if revoked is None:
        console.print(f"[red]error:[/red] no active key {key!r}")
        raise typer.Exit(1)
    console.print(f"revoked key {revoked.id} ({revoked.prefix}…)")


def _scope(key: KeyInfo) -> str:
    return "admin" if key.admin else ",".join(key.collections)
