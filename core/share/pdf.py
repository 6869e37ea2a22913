"""The stakeholder report as a PDF (fpdf2): the same `Report` as the HTML file, charts drawn as
PNG images (`core.charts.images`), tables as text a reader can search and copy.

fpdf2 is pure Python (its own dependencies: Pillow, fontTools, defusedxml), writes PDF without
any system library and embeds TrueType fonts. The machine's DejaVu Sans (or Liberation Sans) is
embedded so any name prints; without either, the built-in Helvetica prints Latin-1 only.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from core.charts.images import Progress, png_images
from core.charts.overview import alarms_history_figure, events_timeline
from core.share.report import STORY_NOTE, Report, story_table, twin_note

FONTS = [
    (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ),
    (
        Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
        Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
    ),
]
IMAGE_PX = 900
"""Width of every chart image in CSS pixels; it fills the text width of an A4 page."""
GREY = (107, 114, 128)
INK = (31, 41, 55)


class _Document(FPDF):
    """A4 portrait with the report's title and page numbers in the footer."""

    def __init__(self, title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.report_title = title
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=15)
        self.family = "helvetica"
        self.unicode = False
        for regular, bold in FONTS:
            if regular.exists() and bold.exists():
                self.add_font("vigil", "", str(regular))
                self.add_font("vigil", "B", str(bold))
                self.family, self.unicode = "vigil", True
                break
        self.set_title(self.text(title))
        self.set_creator("Vigil")

    def text(self, value: object) -> str:
        """The value as printable text (Latin-1 only without an embedded font)."""
        s = "-" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
        if self.unicode:
            return s
        s = s.replace("·", "-").replace("…", "...").replace("–", "-")
        return s.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.family, "", 7)
        self.set_text_color(*GREY)
        self.cell(0, 4, self.text(f"{self.report_title} · page {self.page_no()}"), align="C")

    def heading(self, text: str, size: float = 13, keep: float = 50) -> None:
        """A bold heading, on a new page unless ``keep`` mm of what follows fit under it."""
        if self.will_page_break(size * 0.5 + keep):
            self.add_page()
        self.ln(3)
        self.set_font(self.family, "B", size)
        self.set_text_color(*INK)
        self.multi_cell(
            0, size * 0.5, self.text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(1)

    def para(self, text: str, size: float = 9, grey: bool = False) -> None:
        self.set_font(self.family, "", size)
        self.set_text_color(*(GREY if grey else INK))
        self.multi_cell(
            0, size * 0.45, self.text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        self.ln(1)

    def kpis(self, items: list[tuple[str, str]]) -> None:
        """Headline numbers: the value large, its label small under it, in one row of boxes."""
        if not items:
            return
        self.set_text_color(*INK)
        self.set_draw_color(229, 231, 235)
        with self.table(
            borders_layout="ALL", text_align="CENTER", first_row_as_headings=False, line_height=6
        ) as table:
            values = table.row()
            self.set_font(self.family, "B", 13)
            for _, value in items:
                values.cell(self.text(value))
        self.set_font(self.family, "", 7)
        self.set_text_color(*GREY)
        with self.table(borders_layout="NONE", text_align="CENTER", line_height=4) as table:
            labels = table.row()
            for label, _ in items:
                labels.cell(self.text(label))
        self.set_font(self.family, "B", 7)  # fpdf2 styles headings with the font at start
        self.ln(2)

    def frame(
        self, frame: pd.DataFrame, size: float = 7, widths: tuple[float, ...] | None = None
    ) -> None:
        """A table of text; times to the minute, numbers to two decimals; ``widths`` are the
        columns' relative widths (default: equal)."""
        if frame.empty:
            self.para("None.", grey=True)
            return
        self.set_text_color(*INK)
        self.set_draw_color(229, 231, 235)
        self.set_font(self.family, "B", size)
        with self.table(
            borders_layout="HORIZONTAL_LINES", line_height=size * 0.55, col_widths=widths
        ) as table:
            header = table.row()
            for column in frame.columns:
                header.cell(self.text(column))
            self.set_font(self.family, "", size)
            for _, row in frame.iterrows():
                cells = table.row()
                for value in row:
                    cells.cell(self.text(_cell(value)))
        self.ln(2)

    def picture(self, png: bytes) -> None:
        self.image(io.BytesIO(png), w=self.epw)
        self.ln(2)


def _cell(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return "-" if pd.isna(value) else f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, float):
        return "-" if pd.isna(value) else f"{value:.2f}"
    if isinstance(value, bool):
        return "yes" if value else ""
    return "-" if value is None else str(value)


def _figures(report: Report, per_event: list[list[go.Figure]]) -> list[go.Figure]:
    """Every chart of the report in the order the document shows them."""
    figures = [events_timeline(report.overview.queue)]
    for item in per_event:
        figures.extend(item)
    if report.story is not None:
        figures.append(alarms_history_figure(report.story.history))
    return figures


def pdf_report(report: Report, progress: Progress | None = None) -> bytes:
    """The report as PDF bytes. Needs Chromium for the charts (ConfigError when missing)."""
    per_event = [item.figures() for item in report.events]
    images = iter(png_images(_figures(report, per_event), width=IMAGE_PX, progress=progress))
    doc = _Document(report.title)
    doc.add_page()
    doc.heading(report.title, size=18)
    doc.para(report.subtitle, size=8, grey=True)
    doc.kpis(report.overview.kpis)
    doc.heading("Asset health")
    doc.frame(report.overview.assets)
    doc.heading("Events over time")
    doc.picture(next(images))
    doc.heading("Most severe open events")
    columns = ["event", "asset", "start", "end", "severity", "top_sensors", "status"]
    shown = report.open_events()[columns]
    shown = shown.assign(top_sensors=shown["top_sensors"].str.replace(";", ", "))
    doc.frame(shown.rename(columns={"top_sensors": "top sensors"}), widths=(5, 7, 12, 12, 7, 30, 9))
    if report.events:
        doc.add_page()
        doc.heading("The most severe events, explained", size=15)
    for item, figures in zip(report.events, per_event, strict=True):
        doc.heading(item.title, size=11)
        doc.para(f"Verdict: {item.verdict}\nTop sensors: {item.drivers}")
        about = item.explanation.description if item.explanation is not None else item.note
        doc.para(about or "", size=8, grey=True)
        for _ in figures:
            doc.picture(next(images))
    doc.heading("What the analysts' labels changed", keep=15 if report.story is None else 60)
    doc.para(report.verdicts())
    if report.story is None:
        doc.para(
            f"Model in use: {report.model_in_use()}. No model has been trained from labels yet."
        )
    else:
        doc.kpis([(k if not c else f"{k} · {c}", v) for k, v, c in report.story.kpis()])
        doc.picture(next(images))
        doc.para(STORY_NOTE, size=8, grey=True)
        doc.frame(story_table(report.story))
    if report.twin is not None and report.twin.fidelity is None:
        doc.heading(report.twin.title, keep=15)
        doc.para(report.twin.note, size=8, grey=True)
    elif report.twin is not None:
        fidelity = report.twin.fidelity
        verdict = "passes every check" if fidelity.passed else "fails at least one check"
        doc.heading(f"{report.twin.title}: {verdict}", keep=60)
        doc.frame(fidelity.table(), widths=(14, 6, 5, 5, 30))
        doc.para(twin_note(fidelity), size=8, grey=True)
        doc.frame(fidelity.sensors.round(3))
    return bytes(doc.output())
