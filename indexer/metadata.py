"""Metadata that does not come from the file itself: a sidecar file and run-wide options.

Precedence, lowest first: what the reader found, then ``NAME.EXT.meta.json``
beside the file, then ``--meta key=value`` given for the whole run. ``source``
always stays the document's identity. Each layer is checked against the
metadata limits (``metadata_limits.py``) as it is read.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from indexer.metadata_limits import MetadataLimitError, MetadataLimits, validate_metadata
from indexer.readers.base import json_safe
from rag.errors import DocumentReadError
from rag.types import SourceDocument

SIDECAR_SUFFIX = ".meta.json"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


# Indentation and spacing may make a sidecar file larger than the JSON it holds.
SIDECAR_SLACK = 4


def read_sidecar(path: Path, limits: MetadataLimits | None = None) -> dict[str, Any]:
    limits = limits or MetadataLimits()
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        if sidecar.stat().st_size > SIDECAR_SLACK * limits.max_bytes:
            raise MetadataLimitError(
                f"the sidecar file is over {SIDECAR_SLACK * limits.max_bytes:,} bytes "
                "(limit: RAG_INDEXING__MAX_METADATA_KB)"
            )
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        validate_metadata(data, limits)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentReadError(str(sidecar), f"unreadable metadata sidecar: {exc}") from exc
    except MetadataLimitError as exc:
        raise DocumentReadError(str(sidecar), f"metadata sidecar refused: {exc}") from exc
    except RecursionError as exc:
        raise DocumentReadError(str(sidecar), "metadata sidecar nests too deeply to read") from exc
    if not isinstance(data, dict):
        raise DocumentReadError(str(sidecar), "a metadata sidecar must hold a JSON object")
    return json_safe(data)  # type: ignore[no-any-return]


def parse_meta_options(options: list[str], limits: MetadataLimits | None = None) -> dict[str, str]:
    """``["team=hr", "year=2025"]`` -> ``{"team": "hr", "year": "2025"}``; a ValueError if bad or too large."""
    parsed = {}
    for option in options:
        key, separator, value = option.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--meta takes key=value, got {option!r}")
        parsed[key.strip()] = value.strip()
    validate_metadata(parsed, limits)
    return parsed


def with_metadata(document: SourceDocument, *layers: dict[str, Any]) -> SourceDocument:
    merged = dict(document.metadata)
    for layer in layers:
        merged.update(layer)
    merged["source"] = document.metadata.get("source", document.source)
    return replace(document, metadata=merged)
