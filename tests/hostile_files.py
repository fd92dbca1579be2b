"""Hostile files made by the tests themselves (issue 18): alias bombs, zip bombs, deep JSON."""

from __future__ import annotations

import io
import random
import zipfile

import docx


def yaml_alias_bomb(levels: int = 7, width: int = 10) -> str:
    """Markdown whose front matter expands to ``width ** levels`` strings (10 million at 7 levels)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "---\n" + "\n".join(lines) + "\n---\n# Laughs\n\nA short body.\n"


def docx_bytes(paragraphs: list[str], title: str = "") -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if title:
        document.core_properties.title = title
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_bomb(body_xml: bytes) -> bytes:
    """A valid DOCX whose ``word/document.xml`` gets ``body_xml`` appended to its body, packed hard."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes(["Quarterly plan"])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "word/document.xml":
                data = data.replace(b"</w:body>", body_xml + b"</w:body>")
            archive.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def empty_paragraphs_bomb(count: int) -> bytes:
    """The issue's slow bomb at small scale: many empty paragraphs (parsing time, no text)."""
    return docx_bomb(b"<w:p/>" * count)


def text_node_bomb(size: int) -> bytes:
    """The issue's memory bomb at small scale: one huge text node."""
    return docx_bomb(b"<w:p><w:r><w:t>" + b"a" * size + b"</w:t></w:r></w:p>")


def nested_json(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def slow_docx(count: int, seed: int = 18) -> bytes:
    """Empty paragraphs with random revision ids: packs only ~4:1, so it passes the ratio check,
    and python-docx still takes about 10 s per 100,000 of them (the time budget's case)."""
    rng = random.Random(seed)
    return docx_bomb(b"".join(b'<w:p w:rsidR="%08X"/>' % rng.getrandbits(32) for _ in range(count)))
