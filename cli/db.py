"""``rag db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from rag.config import load_settings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


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
