"""Zip-based formats (DOCX now; XLSX, PPTX, EPUB, ODT alike) checked before a parser unpacks them.

A zip bomb is a small file whose members unpack to a huge size: 62 KB of DOCX
that is 40 MB of XML held the ingestion worker for two minutes. The central
directory declares every member's sizes; Python's ``zipfile`` never returns more
than the declared size of a member (and fails on a CRC mismatch), so these
declared sizes bound what any ``zipfile``-based parser (python-docx, openpyxl,
python-pptx, ebooklib) will unpack, and checking them costs no decompression.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from indexer.limits import ArchiveLimits
from rag.errors import DocumentReadError

RATIO_MEMBER_FLOOR = (
    1_000_000  # small members compress very well legitimately (styles, empty parts)
)


def check_archive(path: Path, limits: ArchiveLimits | None = None, kind: str = "archive") -> None:
    """Raise :class:`DocumentReadError` if the file is not a zip or would unpack beyond ``limits``;
    ``kind`` names the format in the message ("DOCX")."""
    limits = limits or ArchiveLimits()
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable {kind}: {exc}") from exc
    if len(members) > limits.max_members:
        raise DocumentReadError(
            str(path), f"the archive holds {len(members):,} files, more than {limits.max_members:,} "
            "(limit: RAG_INDEXING__MAX_ARCHIVE_MEMBERS)",
        )  # fmt: skip
    unpacked = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    if unpacked > limits.max_unpacked_bytes:
        raise DocumentReadError(
            str(path), f"unpacks to {unpacked / 1e6:,.1f} MB, more than {limits.max_unpacked_bytes / 1e6:g} MB "
            "(a zip bomb, or split the document; limit: RAG_INDEXING__MAX_ARCHIVE_MB)",
        )  # fmt: skip
    for name, size, compressed in [("the archive", unpacked, packed)] + [
        (repr(m.filename), m.file_size, m.compress_size) for m in members
    ]:
        if size >= RATIO_MEMBER_FLOOR and size > limits.max_ratio * max(compressed, 1):
            raise DocumentReadError(
                str(path), f"{name} unpacks {size / max(compressed, 1):,.0f} times its packed size "
                f"({size / 1e6:,.1f} MB), more than {limits.max_ratio:g} (a zip bomb; "
                "limit: RAG_INDEXING__MAX_COMPRESSION_RATIO)",
            )  # fmt: skip
