"""E-mail messages (.eml, the standard library's email package).

The headers become metadata (subject as ``title``, ``from`` as ``author``,
``to``, ``cc``, ``date``, ``message_id``); the body (plain text, else the HTML
part's text) is one document. Each attachment that has a reader is read as
its own document, ``FILE#attachment/<name>``, with the message's subject; an
attachment without a reader, or one that fails, is reported.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import tempfile
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import lxml.html

from indexer.readers.base import ReaderOptions, ReadResult, file_document, json_safe, source_id
from rag.errors import DocumentReadError

MAX_DEPTH = 3  # a message attached to a message attached to a message


def headers(message: EmailMessage) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for header, key in (
        ("subject", "title"),
        ("from", "author"),
        ("to", "to"),
        ("cc", "cc"),
        ("message-id", "message_id"),
    ):
        value = message.get(header)
        if value is not None and str(value).strip():
            metadata[key] = " ".join(str(value).split())
    if message.get("date"):
        try:
            metadata["date"] = email.utils.parsedate_to_datetime(str(message["date"])).isoformat()
        except (TypeError, ValueError):
            metadata["date"] = str(message["date"])
    return metadata


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_subtype() == "html" and content.strip():
        return str(lxml.html.document_fromstring(content).text_content())
    return str(content)


def read(path: Path, options: ReaderOptions | None = None, depth: int = 0) -> ReadResult:
    try:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        metadata = headers(message)
        text = body_text(message).strip()
        attachments = list(message.iter_attachments())
    except (LookupError, ValueError, UnicodeError) as exc:  # LookupError: an unknown charset
        raise DocumentReadError(str(path), f"unreadable e-mail: {exc}") from exc
    result = ReadResult()
    if text:
        result.documents.append(file_document(path, text, metadata))
    for number, attachment in enumerate(attachments, start=1):
        _read_attachment(path, attachment, number, metadata, options, depth, result)
    if not result.documents and not result.problems:
        raise DocumentReadError(str(path), "no body text and no attachments")
    return result


def _read_attachment(
    path: Path,
    attachment: EmailMessage,
    number: int,
    message_metadata: dict[str, Any],
    options: ReaderOptions | None,
    depth: int,
    result: ReadResult,
) -> None:
    from indexer.readers import reader_for  # the registry imports this module

    name = Path(attachment.get_filename() or f"attachment-{number}").name or f"attachment-{number}"
    source = f"{source_id(path)}#attachment/{name}"
    reader = reader_for(Path(name))
    if reader is None or (name.lower().endswith(".eml") and depth >= MAX_DEPTH):
        result.problems.append(
            DocumentReadError(
                source,
                f"attachment not indexed: no reader for {Path(name).suffix or 'files without an extension'}",
            )
        )
        return
    try:
        decoded = attachment.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        with tempfile.TemporaryDirectory(prefix="rag-eml-") as folder:
            saved = Path(folder) / name
            saved.write_bytes(payload)
            attached = (
                read(saved, options, depth + 1)
                if name.lower().endswith(".eml")
                else reader(saved, options)
            )
            prefix = source_id(saved)
    except DocumentReadError as exc:
        result.problems.append(DocumentReadError(source, exc.reason))
        return
    except (OSError, ValueError, RecursionError) as exc:
        result.problems.append(DocumentReadError(source, f"{type(exc).__name__}: {exc}"))
        return
    context = json_safe(
        {
            "attachment": name,
            **{k: v for k, v in message_metadata.items() if k in ("title", "author", "date")},
        }
    )
    for document in attached.documents:
        moved = source + document.source[len(prefix) :]
        metadata = {**context, **document.metadata, "source": moved}
        result.documents.append(replace(document, source=moved, metadata=metadata))
    result.problems.extend(
        DocumentReadError(source + p.path[len(prefix) :], p.reason) for p in attached.problems
    )
