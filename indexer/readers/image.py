"""Images (.png, .jpg, .jpeg, .tif, .tiff): their text by OCR (indexer/readers/ocr.py).

A multi-page TIFF gives one section per page. Every chunk says ``ocr: true``
and names the engine; an image in which nothing is recognised is reported,
never indexed as empty.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from indexer.readers import ocr
from indexer.readers.base import ReaderOptions, ReadResult, file_document
from indexer.readers.structure import TextBuilder
from rag.errors import DocumentReadError

MAX_PAGES = 500


def read(path: Path, options: ReaderOptions | None = None) -> ReadResult:
    ocr.require_engine(str(path), "an image")
    builder = TextBuilder()
    try:
        with Image.open(path) as image:
            pages = getattr(image, "n_frames", 1)
            if pages > MAX_PAGES:
                raise DocumentReadError(
                    str(path), f"image has {pages} pages; at most {MAX_PAGES} are read"
                )
            for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                page_metadata = {"page": number} if pages > 1 else {}
                builder.add(ocr.recognize(frame), {**page_metadata, **ocr.ocr_metadata()})
            size = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise DocumentReadError(str(path), f"corrupt or unreadable image: {exc}") from exc
    except ocr.OcrError as exc:
        raise DocumentReadError(str(path), str(exc)) from exc
    if not builder.text.strip():
        raise DocumentReadError(str(path), "no text recognised in the image (OCR)")
    metadata = {"pages": pages, "width": size[0], "height": size[1], **ocr.ocr_metadata()}
    document = file_document(path, builder.text, metadata)
    return ReadResult(documents=[replace(document, sections=builder.sections)])
