"""``rag index``, ``rag delete`` and ``rag check``: bulk indexing and consistency."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand

from cli.common import CollectionOption, console, open_store, setup_logging
from indexer.discovery import Discovered, discover
from indexer.limits import ReadLimits
from indexer.metadata import parse_meta_options
from indexer.pipeline import Indexer, IndexReport, RunOptions
from indexer.readers import ReaderOptions
from rag.collections.catalog import CollectionCatalog
from rag.collections.names import DEFAULT_COLLECTION
from rag.collections.store import CollectionStore
from rag.config import load_settings
from rag.embedding.factory import make_embedder
from rag.errors import RAGError

RAY_FROM_SETTINGS = "settings"  # `--ray` with no address: RAG_RAY__ADDRESS
_ADDRESS = re.compile(r"auto|local|ray://.+|[\w.-]+:\d+")


def optional_ray_address(args: list[str]) -> list[str]:
    """``--ray`` takes an optional ADDRESS (Typer has no such option): a ``--ray`` not followed
    by an address (auto, local, HOST:PORT, ray://...) gets the settings' one."""
    out: list[str] = []
    for position, arg in enumerate(args):
        out.append(arg)
        if arg == "--":
            return out + args[position + 1 :]
        if arg == "--ray":
            following = args[position + 1] if position + 1 < len(args) else None
            if following is None or not _ADDRESS.fullmatch(following):
                out.append(RAY_FROM_SETTINGS)
    return out


class IndexCommand(TyperCommand):
    """``rag index``, its ``--ray`` taking an optional address."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, optional_ray_address(args))


def index(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files or folders (searched recursively); with --ray also object-store URLs "
            "(s3://bucket/prefix)."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Remove documents under PATHS whose source no longer exists."),
    ] = False,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", help="key=value added to every document's metadata (repeatable)."),
    ] = None,
    csv_text_column: Annotated[
        str | None,
        typer.Option(help="CSV column holding the text (default: text, content or body)."),
    ] = None,
    collection: CollectionOption = DEFAULT_COLLECTION,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="[ADDRESS]",
            help="Run as a Ray Data pipeline: auto joins the running cluster, HOST:PORT or "
            "ray://HOST:PORT a given one, local starts a local one; without ADDRESS, "
            "RAG_RAY__ADDRESS (unset: local).",
        ),
    ] = None,
) -> None:
    """Index files; unchanged documents are skipped, changed ones re-embedded.

    Metadata comes from the file (front matter, HTML meta tags, JSONL), then from a
    sidecar NAME.EXT.meta.json beside it, then from --meta options."""
    settings = load_settings()
    setup_logging(settings)
    limits = ReadLimits.from_settings(settings.indexing)
    try:
        options = RunOptions(
            metadata=parse_meta_options(meta or [], limits.metadata),
            prune=prune,
            reader=ReaderOptions(csv_text_column=csv_text_column, limits=limits),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--meta") from exc
    if ray is None and any("://" in path for path in paths):
        raise typer.BadParameter("object-store URLs are read with --ray", param_hint="PATHS")
    try:
        store = open_store(settings, collection)
        if ray is None:
            roots = [Path(path) for path in paths]
            found = list(discover(roots, settings.indexing.max_file_bytes))
            report = _run_with_progress(Indexer(store), found, roots, options, quiet=as_json)
        else:
            address = settings.ray.address if ray == RAY_FROM_SETTINGS else ray
            report = _run_on_ray(store, paths, address, options, as_json)
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


def _run_on_ray(
    store: CollectionStore, paths: list[str], address: str, options: RunOptions, quiet: bool
) -> IndexReport:
    import ray

    from indexer.ray_indexing import RayIndexer, connect

    started = connect(address, store.settings.ray.local_cpus)
    progress = Progress(
        TextColumn("[bold]indexing on Ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"), console=console, disable=quiet,
    )  # fmt: skip
    try:
        with progress:
            task = progress.add_task("files", total=None, current="")
            return RayIndexer(store).index(
                paths,
                options,
                on_file=lambda path: progress.update(
                    task, advance=1, current=path.rsplit("/", 1)[-1]
                ),
                on_listed=lambda files: progress.update(task, total=files),
            )
    finally:
        if started:
            ray.shutdown()


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


def delete(
    sources: Annotated[
        list[str], typer.Argument(help="Document sources: file paths, folders or FILE#ID.")
    ],
    collection: CollectionOption = DEFAULT_COLLECTION,
) -> None:
    """Remove documents (and their chunks and vectors) by source."""
    settings = load_settings()
    setup_logging(settings)
    store = open_store(settings, collection)
    resolved = [
        s if "#" in s or ":" in s.split("/", 1)[0] else str(Path(s).resolve()) for s in sources
    ]
    removed = Indexer(store).delete_sources(resolved)
    store.close()
    console.print(f"removed {removed} document(s)")
    raise typer.Exit(0 if removed else 1)


def check(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what is found.")] = False,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="One collection (default: every one).")
    ] = None,
) -> None:
    """Compare this machine's faiss and BM25 cache with SQL, per collection (one JSON line each);
    --repair rebuilds the cache from SQL."""
    settings = load_settings()
    setup_logging(settings)
    embedder = make_embedder(settings.embedding, settings.model_cache_dir)
    catalog = CollectionCatalog(settings, embedder)
    names = [collection] if collection else catalog.collection_names()
    healthy = True
    for name in names:
        store = catalog.writable_store(name)
        report = store.check(repair=repair)  # this machine's cache against SQL
        store.close()
        healthy = healthy and (report.consistent or report.repaired)
        typer.echo(
            json.dumps({"collection": name} | report.__dict__ | {"consistent": report.consistent})
        )
    catalog.close()
    raise typer.Exit(0 if healthy else 1)
