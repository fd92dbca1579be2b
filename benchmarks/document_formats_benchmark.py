"""Issue 17: OCR accuracy and speed, text-PDF speed, and OCR running beside embedding.

    .venv/bin/python benchmarks/document_formats_benchmark.py [--pages 6] [--documents 120] [--out FILE]

Makes its own files with real tools (tests/office_factory.py): a text PDF, the
same PDF rendered to images and saved back with no text layer, and a PDF with
ruled tables. Prints (and writes) one JSON object with:
- OCR character accuracy (difflib ratio of whitespace-normalised text) on the scanned PDF;
- pages per second of the PDF reader for text pages, pages with tables, scanned pages (OCR);
- indexing time of text documents alone, of the scanned PDF alone, and of both in one run:
  when OCR runs beside the embedding, both together take less than the sum;
- the machine: CPU model, cores, flags avx512_vnni/amx/avx512_bf16, library versions.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path

from indexer.pipeline import Indexer
from indexer.readers import ocr, pdf
from rag.collections.store import CollectionStore
from rag.config import load_settings
from rag.embedding.factory import make_embedder
from tests import office_factory
from tests.pdf_factory import write_pdf

WORDS = (
    "river harbour ferry crane budget engine quay lantern timber cargo signal valve rudder pier "
    "season schedule workshop inspection propeller captain tide beacon anchor hull dock"
).split()


def page_text(number: int) -> str:
    lines = []
    for line in range(14):
        words = [WORDS[(number * 7 + line * 3 + i * 5) % len(WORDS)] for i in range(7)]
        lines.append(f"{line + 1}. The " + " ".join(words) + f" costs {number * 100 + line} euros.")
    return "\n".join(lines)


def machine() -> dict[str, object]:
    info: dict[str, object] = {"cores": os.cpu_count(), "platform": platform.platform()}
    info["load_average_1_5_15_min"] = [
        round(x, 1) for x in os.getloadavg()
    ]  # others' work slows every figure
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.splitlines()
                if line.startswith("model name")
            ),
            "",
        )
        flags = next(
            (
                line.split(":", 1)[1].split()
                for line in cpuinfo.splitlines()
                if line.startswith("flags")
            ),
            [],
        )
        info["cpu"] = model
        info["flags"] = {
            flag: flag in flags for flag in ("avx512_vnni", "amx_tile", "amx_bf16", "avx512_bf16")
        }
    except OSError:
        pass
    versions = {}
    for package in (
        "pypdf",
        "pdfplumber",
        "pypdfium2",
        "openpyxl",
        "python-pptx",
        "python-docx",
        "openvino",
        "torch",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    versions["tesseract"] = ocr.engine_version() or "missing"
    info["versions"] = versions
    return info


def timed_read(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = pdf.read(path)
    return time.perf_counter() - start, result.documents[0].text


def accuracy(expected: str, recognised: str) -> float:
    a, b = " ".join(expected.split()), " ".join(recognised.split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def index_seconds(paths: list[Path], folder: Path, embedder: object) -> float:
    base = load_settings()
    folder.mkdir(parents=True)
    settings = base.model_copy(
        update={
            "data_dir": folder / "data",
            "models_dir": base.model_cache_dir,
            "database_url": f"sqlite:///{folder}/index.sqlite3",
        }
    )
    store = CollectionStore(settings, embedder)  # type: ignore[arg-type]
    start = time.perf_counter()
    report = Indexer(store).index_paths(paths)
    elapsed = time.perf_counter() - start
    store.close()
    assert not report.failed, report.failed
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument(
        "--documents", type=int, default=120, help="text documents indexed beside the OCR"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if ocr.engine_version() is None:
        raise SystemExit(f"tesseract is not installed: {ocr.INSTALL_HINT}")
    folder = Path(tempfile.mkdtemp(prefix="rag-bench-formats-"))
    try:
        pages = [page_text(n) for n in range(args.pages)]
        text_seconds, _ = timed_read(write_pdf(folder / "text.pdf", pages * 5))
        rows = [office_factory.TABLE_HEADER, *office_factory.table_rows(25)]
        table_pdf = office_factory.pdf_with_table(
            folder / "table.pdf", rows, "The fleet table follows.", "End."
        )
        table_seconds = sum(timed_read(table_pdf)[0] for _ in range(5)) / 5
        (folder / "scan").mkdir()
        scanned = office_factory.scanned_pdf(folder / "scan" / "scanned.pdf", pages)
        ocr_seconds, recognised = timed_read(scanned)

        texts = folder / "texts"
        texts.mkdir()
        for n in range(args.documents):
            (texts / f"doc{n}.txt").write_text("\n\n".join(page_text(n + k) for k in range(2)))
        settings = load_settings()
        embedder = make_embedder(settings.embedding, settings.model_cache_dir)
        embedder.embed(["warm up"])
        alone_text = index_seconds([texts], folder / "a", embedder)
        alone_ocr = index_seconds([folder / "scan"], folder / "b", embedder)
        together = index_seconds([folder / "scan", texts], folder / "c", embedder)
        result = {
            "ocr_engine": ocr.engine_version(),
            "ocr_render_dpi": pdf.pdf_pages.OCR_DPI,
            "scan_dpi": office_factory.SCAN_DPI,
            "ocr_character_accuracy": round(accuracy("\n".join(pages), recognised), 4),
            "ocr_pages_per_s": round(args.pages / ocr_seconds, 3),
            "text_pdf_pages_per_s": round(args.pages * 5 / text_seconds, 1),
            "table_pdf_pages_per_s": round(1 / table_seconds, 2),
            "index_text_documents_alone_s": round(alone_text, 2),
            "index_scanned_pdf_alone_s": round(alone_ocr, 2),
            "index_both_in_one_run_s": round(together, 2),
            "overlap_saved_s": round(alone_text + alone_ocr - together, 2),
            "text_documents": args.documents,
            "scanned_pages": args.pages,
            "machine": machine(),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
