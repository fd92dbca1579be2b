"""Makes real office files with real tools, for the reader and retrieval tests:
a scanned PDF (text rendered to an image by pdfium and saved back into a PDF
with no text layer), DOCX (python-docx), HTML, XLSX (openpyxl), PPTX
(python-pptx) and EML (the standard library)."""

from __future__ import annotations

import email.message
from pathlib import Path

import docx
import openpyxl
import pypdfium2
from PIL import Image
from pptx import Presentation
from pptx.util import Inches

from tests.pdf_factory import serialize_pdf, write_pdf

SCAN_DPI = 200

# A fleet register: one row per van, enough rows to span several chunks. Each row
# carries a cargo no other row (of any table) carries, so a question can name it.
TABLE_HEADER = ["Vehicle", "Plate", "Driver", "Cargo"]
FIRST_NAMES = ["Maria", "John", "Aiko", "Omar", "Lena", "Pavel", "Nadia", "Kofi", "Ines", "Tariq"]
CARGO = (
    "saffron marble tulips pianos anchors bicycles violins lanterns carpets porcelain "
    "telescopes hammocks beehives cinnamon kayaks accordions chandeliers typewriters globes harps "
    "snowboards trombones mattresses aquariums sundials tapestries windmills pumpkins surfboards compasses "
    "parachutes xylophones saddles canoes mannequins gramophones cactuses barometers quilts lobsters "
    "vanilla granite orchids cellos propellers tricycles banjos candles rugs ceramics "
    "microscopes tents honeycombs nutmeg paddles bagpipes lamps sewing-machines maps lyres "
    "skis tubas pillows terrariums hourglasses mosaics turbines melons skateboards sextants "
    "balloons marimbas stirrups rafts statues phonographs succulents thermometers blankets oysters "
    "cardamom slate lilies bassoons rudders scooters mandolins torches mats stoneware "
    "binoculars sleeping-bags beeswax ginger oars clarinets chandlers-wax radios atlases zithers "
    "sledges flutes cushions fishbowls metronomes frescoes dynamos gourds wakeboards astrolabes "
    "kites gongs bridles dinghies busts jukeboxes ferns hygrometers duvets mussels"
).split()


def table_rows(count: int = 40, first: int = 1) -> list[list[str]]:
    return [
        [
            f"Van {i}",
            f"PL-{1000 + 37 * i}",
            f"{FIRST_NAMES[i % 10]} {chr(65 + i % 26)}.",
            CARGO[i - 1],
        ]
        for i in range(first, first + count)
    ]


SCANNED_PAGES = [
    "Quarterly maintenance memo\nThe brake inspection of the blue tram\nis scheduled for the ninth of March.\nWorkshop seven will replace the pads.",
    "Second page of the memo\nThe orange ferry needs a new propeller\nbefore the summer season begins.\nBudget code FX-2291 covers the repair.",
]


def scanned_pdf(path: Path, pages: list[str] = SCANNED_PAGES, dpi: int = SCAN_DPI) -> Path:
    """Text PDF -> rendered images (pdfium) -> an image-only PDF (Pillow): no text layer."""
    text_pdf = write_pdf(path.with_suffix(".text.pdf"), pages)
    document = pypdfium2.PdfDocument(text_pdf)
    images = [
        document[i].render(scale=dpi / 72).to_pil().convert("L") for i in range(len(document))
    ]
    document.close()
    text_pdf.unlink()
    images[0].save(path, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return path


def scanned_image(path: Path, text: str = SCANNED_PAGES[0]) -> Path:
    pdf = scanned_pdf(path.with_suffix(".scan.pdf"), [text])
    document = pypdfium2.PdfDocument(pdf)
    image: Image.Image = document[0].render(scale=SCAN_DPI / 72).to_pil()
    document.close()
    pdf.unlink()
    image.save(path)
    return path


def docx_with_table(path: Path, rows: int = 40) -> Path:
    document = docx.Document()
    document.core_properties.title = "Fleet register"
    document.add_heading("Fleet register", level=1)
    document.add_paragraph("This register lists every van of the company and who drives it.")
    document.add_heading("Vans in service", level=2)
    table = document.add_table(rows=1, cols=len(TABLE_HEADER))
    for cell, value in zip(table.rows[0].cells, TABLE_HEADER):
        cell.text = value
    for row in table_rows(rows):
        for cell, value in zip(table.add_row().cells, row):
            cell.text = value
    document.add_heading("Retired vans", level=2)
    document.add_paragraph("Van 99 was retired after the flood of the river depot.")
    document.save(str(path))
    return path


def html_with_table(path: Path, rows: int = 40, first: int = 41) -> Path:
    body = "".join(
        f"<tr>{''.join(f'<td>{v}</td>' for v in row)}</tr>" for row in table_rows(rows, first)
    )
    head = "".join(f"<th>{v}</th>" for v in TABLE_HEADER)
    path.write_text(
        "<html><head><title>Fleet register</title></head><body><nav>Home | Contact</nav><article>"
        "<h1>Fleet register</h1><p>This register lists every van of the company and who drives it.</p>"
        f"<h2>Vans in service</h2><table><tr>{head}</tr>{body}</table>"
        "<h2>Retired vans</h2><p>Van 99 was retired after the flood of the river depot.</p>"
        "</article><footer>Copyright</footer></body></html>",
        encoding="utf-8",
    )
    return path


def xlsx_workbook(path: Path, rows: int = 40, first: int = 81) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Vans"
    sheet.append(TABLE_HEADER)
    for row in table_rows(rows, first):
        sheet.append(row)
    budget = workbook.create_sheet("Budget")
    budget.append(["Item", "Amount"])
    budget.append(["Tyres", 4200])
    budget.append(["Fuel", 18350.5])
    workbook.save(path)
    return path


SLIDES = [
    ("Harbour expansion", "The new pier opens in October.", "Mention the crane contract."),
    ("Ferry timetable", "The night ferry leaves at 23:40 from quay four.", ""),
    ("Budget", "The lighthouse repaint costs 12,000 euros.", "Ask finance about the second quote."),
]


def pptx_deck(path: Path, slides: list[tuple[str, str, str]] = SLIDES) -> Path:
    deck = Presentation()
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Crew roster"
    shape = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, row in enumerate(
        [["Role", "Name"], ["Captain", "Ingrid Vos"], ["Engineer", "Tomas Berg"]]
    ):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(path))
    return path


def eml_message(path: Path, attachments: dict[str, bytes] | None = None) -> Path:
    message = email.message.EmailMessage()
    message["Subject"] = "Depot move"
    message["From"] = "Ana Ruiz <ana@example.org>"
    message["To"] = "team@example.org"
    message["Date"] = "Tue, 03 Mar 2026 09:15:00 +0000"
    message["Message-ID"] = "<move-42@example.org>"
    message.set_content("The Riverside depot moves to Canal Street on the first of April.")
    for name, data in (attachments or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    path.write_bytes(bytes(message))
    return path


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_with_table(path: Path, rows: list[list[str]], before: str, after: str) -> Path:
    """One page: a paragraph, a table drawn with ruled cells (as office suites export
    them), another paragraph. Written by hand: no PDF library here writes tables."""
    width, height, left, top, cell_h = 612, 792, 72, 700, 18
    cell_w = (width - 2 * left) / len(rows[0])
    ops = [f"BT /F1 11 Tf {left} 740 Td ({_pdf_escape(before)}) Tj ET"]
    for r, row in enumerate(rows):
        y = top - (r + 1) * cell_h
        for c, value in enumerate(row):
            x = left + c * cell_w
            ops.append(f"{x:.1f} {y} {cell_w:.1f} {cell_h} re S")
            ops.append(f"BT /F1 10 Tf {x + 4:.1f} {y + 5} Td ({_pdf_escape(value)}) Tj ET")
    ops.append(
        f"BT /F1 11 Tf {left} {top - (len(rows) + 2) * cell_h} Td ({_pdf_escape(after)}) Tj ET"
    )
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    path.write_bytes(serialize_pdf(objects))
    return path


def with_outline(path: Path, entries: list[tuple[str, int, int]]) -> Path:
    """Adds outline entries (title, page index, level 1 or 2) with pypdf."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(path))
    parent = None
    for title, page, level in entries:
        item = writer.add_outline_item(title, page, parent=parent if level == 2 else None)
        if level == 1:
            parent = item
    with path.open("wb") as handle:
        writer.write(handle)
    return path
