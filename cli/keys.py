"""``rag keys``: API keys, created, listed and revoked."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cli.common import console, stdout_console
from rag.access.api_keys import ApiKeyStore, KeyInfo
from rag.collections.store import SharedDatabase
from rag.config import load_settings

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


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
    console.print(
        f"key {created.info.id} ({created.info.prefix}…) for {scope}; it is shown only now:"
    )
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
        table.add_row(
            str(key.id),
            key.name,
            key.prefix,
            _scope(key),
            key.created_at[:19],
            (key.revoked_at or "")[:19],
        )
    stdout_console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (from `rag keys list`).")],
) -> None:
    """Revoke a key: it stops working at once."""
    revoked = _key_store().revoke(key)
    if revoked is None:
        console.print(f"[red]error:[/red] no active key {key!r}")
        raise typer.Exit(1)
    console.print(f"revoked key {revoked.id} ({revoked.prefix}…)")


def _scope(key: KeyInfo) -> str:
    return "admin" if key.admin else ",".join(key.collections)
