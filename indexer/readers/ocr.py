"""Optical character recognition with Debian's Tesseract (``tesseract-ocr`` +
``tesseract-ocr-eng``), called as a program: nothing is downloaded at run time.

Tesseract runs as a child process, so the Python thread waiting for it holds
no GIL and the embedding of other documents goes on beside it; it is limited
to one OpenMP thread so that it does not fight the encoder for the cores.
Where it is not installed, the file is reported with the packages to install.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess

from PIL import Image

from rag.errors import DocumentReadError

ENGINE = "tesseract"
LANGUAGE = os.environ.get("RAG_OCR_LANGUAGE", "eng")
TIMEOUT_S = 300.0
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"


class OcrError(RuntimeError):
    """Tesseract is missing, failed or took too long on a page."""


@functools.cache
def engine_version() -> str | None:
    """``tesseract 5.3.0``, or None when the program is missing."""
    program = shutil.which("tesseract")
    if program is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    words = (done.stdout or done.stderr).split()
    return f"{ENGINE} {words[1]}" if len(words) > 1 and words[0] == ENGINE else ENGINE


def ocr_metadata() -> dict[str, object]:
    return {"ocr": True, "ocr_engine": engine_version() or ENGINE}


def require_engine(path: str, what: str) -> None:
    if engine_version() is None:
        raise DocumentReadError(
            path, f"{what} needs OCR, but tesseract is not installed ({INSTALL_HINT})"
        )


def recognize(image: Image.Image) -> str:
    """The text Tesseract reads in an image (automatic page segmentation)."""
    program = shutil.which("tesseract")
    if program is None:
        raise OcrError(f"tesseract is not installed ({INSTALL_HINT})")
    buffer = io.BytesIO()
    image.convert("L" if image.mode not in ("L", "RGB") else image.mode).save(buffer, format="PNG")
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [program, "stdin", "stdout", "-l", LANGUAGE, "--psm", "3"],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=TIMEOUT_S,
            env=environment,
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrError(f"tesseract took more than {TIMEOUT_S:.0f} s on one page") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise OcrError(f"tesseract failed: {message[-1] if message else done.returncode}")
    return done.stdout.decode("utf-8", errors="replace").strip()
