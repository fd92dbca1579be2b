"""Metadata that does not come from the file itself: a sidecar file and run-wide options.

Precedence, lowest first: what the reader found, then ``NAME.EXT.meta.json``
beside the file, then ``--meta key=value`` given for the whole run. ``source``
always stays the document's identity.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from indexer.readers.base import json_safe
from rag.errors import DocumentReadError
from rag.types import SourceDocument

SIDECAR_SUFFIX = ".meta.json"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentReadError(str(sidecar), f"unreadable metadata sidecar: {exc}") from exc
    if not isinstance(data, dict):
        raise DocumentReadError(str(sidecar), "a metadata sidecar must hold a JSON object")
    return json_safe(data)  # type: ignore[no-any-return]


def parse_meta_options(options: list[str]) -> dict[str, str]:
    """``["team=hr", "year=2025"]`` -> ``{"team": "hr", "year": "2025"}``."""
    parsed = {}
    for option in options:
        key, separator, value = option.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--meta takes key=value, got {option!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def with_metadata(document: SourceDocument, *layers: dict[str, Any]) -> SourceDocument:
    merged = dict(document.metadata)
    for layer in layers:
        merged.update(layer)
    merged["source"] = document.metadata.get("source", document.source)
    return replace(document, metadata=merged)
