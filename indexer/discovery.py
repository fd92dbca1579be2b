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


def discover(paths: list[Path], max_file_bytes: int | None = None) -> Iterator[Discovered]:
    """Files with a known extension, recursively. Symlinked folders are not followed
    (no loops); a file that cannot be stat'ed or is over the size limit is reported."""
    for root in paths:
        if root.is_dir():
            yield from _walk(root, max_file_bytes)
        elif not os.path.lexists(root):
            yield Discovered(root, "no such file or directory")
        elif reader_for(root) is None:
            yield Discovered(root, f"unsupported file type {root.suffix or '(none)'}")
        else:
            yield _checked(root, max_file_bytes)


def _checked(path: Path, max_file_bytes: int | None) -> Discovered:
    try:
        size = path.stat().st_size
    except OSError as exc:  # a dangling link, a symlink loop, no permission
        return Discovered(path, f"unreadable: {exc.strerror or exc}")
    if max_file_bytes is not None and size > max_file_bytes:
        return Discovered(
            path, f"{size / 1e6:.1f} MB is over the size limit of {max_file_bytes / 1e6:.1f} MB"
        )
    return Discovered(path)


def _walk(root: Path, max_file_bytes: int | None) -> Iterator[Discovered]:
    errors: list[OSError] = []
    for directory, subdirectories, files in os.walk(root, onerror=errors.append):
        subdirectories.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if name.startswith(".") or reader_for(path) is None:
                continue
            yield _checked(path, max_file_bytes)
    for error in errors:
        yield Discovered(Path(error.filename or root), f"unreadable: {error.strerror}")
