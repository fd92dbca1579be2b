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
from indexer.metadata import parse_meta_options
from indexer.pipeline import Indexer, IndexReport, RunOptions
from indexer.readers import ReaderOptions
from rag.config import Settings, load_settings
from rag.embedding import make_embedder
from rag.errors import RAGError
from rag.store import KnowledgeStore

app = typer.Typer(
    help="Contextual RAG: index documents and answer questions from them.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
models_app = typer.Typer(help="Prepare the packaged models.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")

console = Console(stderr=True)
logger = logging.getLogger("rag.cli")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
        force=True,
    )
    for noisy in ("httpx", "sentence_transformers", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _open_store(settings: Settings) -> KnowledgeStore:
    return KnowledgeStore(settings, make_embedder(settings.embedding, settings.model_cache_dir))


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
) -> None:
    """Index files; unchanged documents are skipped, changed ones re-embedded.

    Metadata comes from the file (front matter, HTML meta tags, JSONL), then from a
    sidecar NAME.EXT.meta.json beside it, then from --meta options."""
    settings = load_settings()
    _setup_logging(settings)
    try:
        options = RunOptions(
            metadata=parse_meta_options(meta or []),
            prune=prune,
            reader=ReaderOptions(csv_text_column=csv_text_column),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--meta") from exc
    try:
        store = _open_store(settings)
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
) -> None:
    """Remove documents (and their chunks and vectors) by source."""
    settings = load_settings()
    _setup_logging(settings)
    store = _open_store(settings)
    resolved = [s if "#" in s or ":" in s.split("/", 1)[0] else str(Path(s).resolve()) for s in sources]
    removed = Indexer(store).delete_sources(resolved)
    store.close()
    console.print(f"removed {removed} document(s)")
    raise typer.Exit(0 if removed else 1)


@app.command()
def check(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False,
) -> None:
    """Compare the SQL chunks with the faiss vector ids."""
    settings = load_settings()
    _setup_logging(settings)
    store = _open_store(settings)
    with store.writer_lock():
        report = store.check(repair=repair)
    store.close()
    typer.echo(json.dumps(report.__dict__ | {"consistent": report.consistent}))
    raise typer.Exit(0 if report.consistent or report.repaired else 1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default RAG_PORT).")] = None,
) -> None:
    """Run the HTTP API (and the embedded vLLM unless RAG_LLM_BASE_URL is set)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    _setup_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
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
