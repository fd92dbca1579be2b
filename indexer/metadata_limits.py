"""Bounds on a document's metadata, checked where metadata is read.

Metadata comes from untrusted places (front matter, sidecars, JSONL lines, CSV
columns, upload forms). It is stored once per document and returned with every
retrieved chunk, so a few hundred bytes that expand (YAML aliases) or nest deeply
cost memory, disk and response size everywhere after. ``validate_metadata`` walks
a value without recursion and stops as soon as a limit is passed, so checking a
bomb costs no more than the budget itself.

The size counted is the length of the value written as compact JSON (what the
database stores); a value shared by YAML aliases counts every time it appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 65_536
DEFAULT_MAX_DEPTH = 16


class MetadataLimitError(ValueError):
    """Metadata over a size or depth limit; the message names the limit and the setting."""


@dataclass(frozen=True)
class MetadataLimits:
    max_bytes: int = DEFAULT_MAX_BYTES  # RAG_INDEXING__MAX_METADATA_KB
    max_depth: int = DEFAULT_MAX_DEPTH  # RAG_INDEXING__MAX_METADATA_DEPTH

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_depth <= 0:
            raise ValueError(f"metadata limits must be positive, got {self}")


def _scalar_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 2  # the quotes
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, (int, float)):
        return len(repr(value)) if not isinstance(value, int) or abs(value) < 10**30 else 32
    return len(str(value)) + 2  # dates and the like are stored as strings


def validate_metadata(obj: Any, limits: MetadataLimits | None = None) -> None:
    """Raise :class:`MetadataLimitError` if ``obj`` nests deeper or weighs more than allowed.

    Iterative and stopping at the first limit passed: safe on a million-level list
    or on an alias graph that would expand to gigabytes."""
    limits = limits or MetadataLimits()
    size = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            depth += 1
            items: list[Any] = []
            for key, item in value.items():
                size += _scalar_bytes(str(key)) + 2  # key, colon, comma
                items.append(item)
            size += 2
            stack.extend((item, depth) for item in items)
        elif isinstance(value, (list, tuple, set, frozenset)):
            depth += 1
            size += 2 + len(value)
            stack.extend((item, depth) for item in value)
        else:
            size += _scalar_bytes(value)
        if depth > limits.max_depth:
            raise MetadataLimitError(
                f"metadata nests deeper than {limits.max_depth} levels; flatten it "
                "(limit: RAG_INDEXING__MAX_METADATA_DEPTH)"
            )
        if size > limits.max_bytes:
            raise MetadataLimitError(
                f"metadata is larger than {limits.max_bytes:,} bytes as JSON (YAML aliases count each time "
                "they are used); keep large content in the document's text "
                "(limit: RAG_INDEXING__MAX_METADATA_KB)"
            )
