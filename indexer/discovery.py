"""Finds the files to index under the paths a user gives."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.readers import reader_for


@dataclass(frozen=True)
class Discovered:
    path: Path
    problem: str | None = None  # set when the path cannot be indexed at all


def discover(paths: list[Path]) -> Iterator[Discovered]:
    """Files with a known extension, recursively; symlinked folders are not followed."""
    for root in paths:
        if not root.exists():
            yield Discovered(root, "no such file or directory")
        elif root.is_file():
            if reader_for(root) is None:
                yield Discovered(root, f"unsupported file type {root.suffix or '(none)'}")
            else:
                yield Discovered(root)
        else:
            yield from _walk(root)


def _walk(root: Path) -> Iterator[Discovered]:
    errors: list[OSError] = []
    for directory, subdirectories, files in os.walk(root, onerror=errors.append):
        subdirectories.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if name.startswith(".") or reader_for(path) is None:
                continue
            yield Discovered(path)
    for error in errors:
        yield Discovered(Path(error.filename or root), f"unreadable: {error.strerror}")
