"""``rag models``: prepare the packaged models."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import console, setup_logging
from rag.config import load_settings
from rag.embedding.factory import make_embedder
from rag.errors import RAGError

models_app = typer.Typer(help="Prepare the packaged models.", no_args_is_help=True)


@models_app.command("prepare")
def models_prepare() -> None:
    """Convert the packaged SmolLM2 GGUF to float32 safetensors (once)."""
    from rag.generation.model_prep import prepare_generator

    settings = load_settings()
    setup_logging(settings)
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
