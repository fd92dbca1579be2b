"""The ``rag`` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from cli.db import db_app
from cli.eval import eval_app
from cli.index import IndexCommand, check, delete, index
from cli.keys import keys_app
from cli.models import models_app
from cli.serve import serve

app = typer.Typer(
    help="Contextual RAG: index documents and answer questions from them.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command(cls=IndexCommand)(index)
for command in (delete, check, serve):
    app.command()(command)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(eval_app, name="eval")
