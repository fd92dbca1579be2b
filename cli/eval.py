"""``rag eval``: measure retrieval on public benchmarks."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.common import console, stdout_console
from evaluation.beir import load_beir
from evaluation.machine import machine_info
from evaluation.retrieval import ModeResult, evaluate_retrieval
from rag.config import RetrievalMode, load_settings
from rag.embedding.factory import make_embedder

eval_app = typer.Typer(help="Measure the pipeline on public benchmarks.", no_args_is_help=True)
ALL_MODES: tuple[str, ...] = get_args(RetrievalMode)


@eval_app.command("retrieval")
def eval_retrieval(
    beir: Annotated[
        Path, typer.Option(help="BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/).")
    ],
    split: Annotated[str, typer.Option(help="qrels split to evaluate")] = "test",
    modes: Annotated[str, typer.Option(help="comma-separated retrieval modes")] = ",".join(
        ALL_MODES
    ),
    data_dir: Annotated[
        Path | None,
        typer.Option(help="keep the index here and reuse it next time (default: a scratch dir)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Index the corpus through the normal indexer, run every query, print nDCG@10, Recall@100, MRR@10."""
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in ALL_MODES]
    if unknown:
        raise typer.BadParameter(f"unknown mode(s) {unknown}; choose from {list(ALL_MODES)}")
    dataset = load_beir(beir, split)
    scratch = data_dir or Path(tempfile.mkdtemp(prefix="rag-eval-"))
    base = load_settings()
    settings = load_settings(
        data_dir=scratch, database_url=None, models_dir=base.model_cache_dir.resolve()
    )
    console.print(
        f"{dataset.name}: {len(dataset.corpus)} documents, {len(dataset.queries)} {split} queries"
    )
    try:
        with _progress(as_json) as progress:
            tasks: dict[str, TaskID] = {}

            def report(mode: str, done: int, total: int) -> None:
                if mode not in tasks:
                    tasks[mode] = progress.add_task(mode, total=total)
                progress.update(tasks[mode], completed=done)

            results = evaluate_retrieval(
                settings,
                make_embedder(settings.embedding, settings.model_cache_dir),
                dataset,
                chosen,  # type: ignore[arg-type]  # checked against RetrievalMode above
                report,
            )
    finally:
        if data_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    default = settings.retrieval.mode
    if as_json:
        body = {mode: result.as_dict() for mode, result in results.items()}
        if default in results:
            body["default"] = {"mode": default, **results[default].as_dict()}  # type: ignore[dict-item]
        body["embedding_backend"] = settings.embedding.backend  # type: ignore[assignment]
        body["machine"] = machine_info()  # type: ignore[assignment]
        typer.echo(json.dumps(body))
    else:
        _print_table(dataset.name, results, default)


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet,
    )  # fmt: skip


def _print_table(name: str, results: dict[str, ModeResult], default: str) -> None:
    table = Table(title=f"retrieval on {name}")
    for column in ("mode", "nDCG@10", "Recall@100", "MRR@10", "ms/query"):
        table.add_column(column)
    for mode, result in results.items():
        label = f"{mode} (default)" if mode == default else mode
        m = result.metrics
        table.add_row(
            label,
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@100']:.4f}",
            f"{m['mrr@10']:.4f}",
            f"{result.ms_per_query:.1f}",
        )
    stdout_console.print(table)


@eval_app.command("answers")
def eval_answers(
    squad: Annotated[Path, typer.Option(help="SQuAD v2 JSON file (dev-v2.0.json).")],
    limit: Annotated[
        int, typer.Option(help="questions asked: half answerable, half unanswerable")
    ] = 100,
    top_k: Annotated[int, typer.Option(help="chunks per question")] = 5,
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the index here (default: a scratch dir)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Source recall, citation precision, abstention on unanswerable questions, EM and F1,
    through the normal pipeline and the configured model (embedded, or RAG_LLM_BASE_URL)."""
    import asyncio

    from api.container import build_container
    from evaluation.answers import evaluate_answers, load_squad
    from indexer.pipeline import Indexer, IndexReport
    from rag.collections.names import DEFAULT_COLLECTION

    documents, questions = load_squad(squad, limit)
    scratch = data_dir or Path(tempfile.mkdtemp(prefix="rag-eval-answers-"))
    base = load_settings()
    settings = load_settings(
        data_dir=scratch, database_url=None, models_dir=base.model_cache_dir.resolve()
    )
    console.print(
        f"{len(documents)} paragraphs, {len(questions)} questions, model: {settings.llm.base_url or 'embedded'}"
    )

    async def run() -> dict[str, float | int]:
        container = await build_container(settings)
        try:
            store = container.catalog.writable_store(DEFAULT_COLLECTION)
            Indexer(store).index_documents(documents, IndexReport())
            store.close()
            with _progress(as_json) as progress:
                task = progress.add_task("asking", total=len(questions))
                return await evaluate_answers(
                    container.answers,
                    questions,
                    top_k,
                    lambda done, _: progress.update(task, completed=done),
                )
        finally:
            await container.close()

    try:
        metrics = asyncio.run(run())
    finally:
        if data_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        typer.echo(json.dumps({**metrics, "machine": machine_info()}))
    else:
        table = Table(title=f"answers on {squad.name}")
        table.add_column("metric")
        table.add_column("value")
        for key, value in metrics.items():
            table.add_row(key, str(value))
        stdout_console.print(table)
