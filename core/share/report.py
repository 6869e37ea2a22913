"""The stakeholder report: one `Report` built from the workspace, rendered as a self-contained
HTML file (works offline, here) or a PDF (`core.share.pdf`); `core.share.files` writes them.

`build_report` gathers what both formats show: the overview (KPIs, asset health, open events,
timeline), the most severe events with their explanations and verdicts, and what the analysts'
labels changed (every model version against the first unsupervised run). Explaining an event
stores its explanation in the workspace cache (as opening it on Explain does); nothing else is
written."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd
import plotly.graph_objects as go

from core.charts.explain import contribution_figure, heatmap_figure
from core.charts.overview import alarms_history_figure, events_timeline
from core.errors import ConfigError, CoreError, DataError
from core.explain import Explanation, explain_event, top_sensors_text
from core.share.overview import ModelStory, Overview, dataset_overview, events_export, model_story
from core.synth.fidelity import FidelityReport
from core.synth.twin import stored_twin_report, twin_pair
from core.types import DatasetInfo

Progress = Callable[[float, str], None]
TOP_EVENTS = 3
"""How many of the run's most severe events the report explains."""
VERDICTS = {
    "unreviewed": "not reviewed yet",
    "confirmed": "confirmed fault",
    "false_alarm": "false alarm",
    "unsure": "unsure",
}


@dataclass(frozen=True)
class ExplainedEvent:
    """One of the most severe events: its queue row (verdict included) and its explanation, or
    ``note`` saying why it has none."""

    event: pd.Series
    explanation: Explanation | None
    note: str | None = None

    @property
    def title(self) -> str:
        e = self.event
        return (
            f"Event #{int(e['event_id'])} on {e['asset']}, {pd.Timestamp(e['start']):%Y-%m-%d %H:%M}"
            f" to {pd.Timestamp(e['end']):%Y-%m-%d %H:%M}, severity {float(e['severity']):.1f}"
        )

    @property
    def verdict(self) -> str:
        """'confirmed fault (spike) by ana: "bearing noise"', or 'not reviewed yet'."""
        e = self.event
        text = VERDICTS.get(str(e["status"]), str(e["status"]))
        if pd.notna(e.get("kind")) and e.get("kind"):
            text += f" ({e['kind']})"
        if pd.notna(e.get("reviewed_by")) and e.get("reviewed_by"):
            text += f" by {e['reviewed_by']}"
        if pd.notna(e.get("comment")) and e.get("comment"):
            text += f': "{e["comment"]}"'
        return text

    @property
    def drivers(self) -> str:
        """The top sensors by explained contribution, else as detection ranked them."""
        if self.explanation is None:
            ranked = ", ".join(list(self.event["top_sensors"])[:3]) or "none"
            return f"{ranked} (as detection ranked them; no explanation)"
        return top_sensors_text(self.explanation, k=3)

    def figures(self) -> list[go.Figure]:
        """The waterfall at the event's peak and the sensors-over-time heatmap (sensor level)."""
        if self.explanation is None:
            return []
        return [contribution_figure(self.explanation), heatmap_figure(self.explanation)]


@dataclass(frozen=True, eq=False)
class TwinPart:
    """A synthetic twin of the dataset (or the dataset as a twin) with its fidelity and privacy
    report, measured against its source when the report is built."""

    source: DatasetInfo
    twin: DatasetInfo
    fidelity: FidelityReport | None
    note: str = ""
    """Why there is no report (the twin no longer lines up with its source), else empty."""

    @property
    def title(self) -> str:
        return f"Synthetic twin {self.twin.name!r} of {self.source.name!r}"


@dataclass(frozen=True)
class Report:
    """Everything the report shows, whatever the format."""

    overview: Overview
    story: ModelStory | None
    events: list[ExplainedEvent]
    generated_by: str
    generated_at: datetime
    twin: TwinPart | None = None

    @property
    def title(self) -> str:
        return f"Vigil report · {self.overview.dataset.name}"

    @property
    def subtitle(self) -> str:
        """Run, size and source of the data, who generated it and when."""
        run = self.overview.run
        info = self.overview.dataset
        run_line = (
            f"Run #{run.id} ({run.detector_used or run.detector}), {run.created_at:%Y-%m-%d %H:%M}"
            if run
            else "No detection run yet"
        )
        return (
            f"{run_line} · {info.n_rows:,} rows from {info.source_file} · generated "
            f"{self.generated_at:%Y-%m-%d %H:%M} by {self.generated_by}"
        )

    def open_events(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` most severe events nobody has reviewed yet."""
        rows = events_export(self.overview)
        return rows[rows["status"] == "unreviewed"].head(n)

    def verdicts(self) -> str:
        """'Analysts' verdicts on this run's 21 events: 1 confirmed fault, 1 false alarm, ...'."""
        queue = self.overview.queue
        if queue.empty:
            return "This run found no events to review."
        counts = queue["status"].value_counts()
        parts = [
            f"{n} {name}{'s' if n != 1 and name.endswith(('fault', 'alarm')) else ''}"
            for status, name in (
                ("confirmed", "confirmed fault"),
                ("false_alarm", "false alarm"),
                ("unsure", "unsure"),
                ("unreviewed", "not reviewed yet"),
            )
            for n in [int(counts.get(status, 0))]
        ]
        return f"Analysts' verdicts on this run's {len(queue)} events: {', '.join(parts)}."

    def model_in_use(self) -> str:
        """What scores the data now, when no version trained from labels exists yet."""
        run = self.overview.run
        if self.story is not None and self.story.in_use is not None:
            return f"version v{self.story.in_use.id}, trained from the analysts' labels"
        if run is None:
            return "none yet"
        return f"unsupervised run #{run.id} ({run.detector_used or run.detector})"


def _explained(
    con: duckdb.DuckDBPyConnection, overview: Overview, top: int, progress: Progress | None
) -> list[ExplainedEvent]:
    if overview.run is None or overview.queue.empty:
        return []
    worst = overview.queue.sort_values("severity", ascending=False).head(top)
    out: list[ExplainedEvent] = []
    for i, (_, event) in enumerate(worst.iterrows()):
        if progress is not None:
            progress(i / len(worst), f"Explaining event #{int(event['event_id'])}…")
        try:
            expl = explain_event(con, overview.run.id, int(event["event_id"]))
        except CoreError as exc:
            out.append(ExplainedEvent(event, None, f"Not explained: {exc}"))
        else:
            out.append(ExplainedEvent(event, expl))
    return out


def build_report(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    generated_by: str = "Vigil",
    top_events: int = TOP_EVENTS,
    progress: Progress | None = None,
) -> Report:
    """The report of a dataset's run in use; explains its ``top_events`` most severe events
    (cached explanations are reused), and measures the dataset's synthetic twin (its newest, or
    the dataset itself when it is one) against its source. ``progress(fraction, message)``
    reports."""
    if top_events < 0:
        raise ConfigError(f"The number of events to explain must be 0 or more. Got {top_events}.")
    overview = dataset_overview(con, info)
    story = model_story(con, info)
    pair = twin_pair(con, info)
    share = 1.0 if pair is None else 0.4
    events = _explained(con, overview, top_events, _part(progress, 0.0, share))
    twin = None
    if pair is not None:
        try:
            fidelity = stored_twin_report(con, *pair, progress=_part(progress, share, 1.0))
        except DataError as exc:  # a stale twin must not cost the plant its report
            twin = TwinPart(pair[0], pair[1], None, f"Not measured: {exc}")
        else:
            twin = TwinPart(pair[0], pair[1], fidelity)
    if progress is not None:
        progress(1.0, "Report ready")
    return Report(overview, story, events, generated_by, datetime.now(), twin)


def _part(progress: Progress | None, start: float, end: float) -> Progress | None:
    """``progress`` for one step of the work, from ``start`` to ``end`` of the whole."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


# --- HTML ------------------------------------------------------------------------------------


def _kpis(items: list[tuple[str, str, str | None]]) -> str:
    return "".join(
        f"<div class='kpi'><div class='v'>{html.escape(v)}</div>"
        f"<div class='l'>{html.escape(k)}{' · ' + html.escape(c) if c else ''}</div></div>"
        for k, v, c in items
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, border=0, classes="t", na_rep="-", float_format=lambda x: f"{x:.2f}"
    )


def _figure(fig: go.Figure, plotlyjs: bool = False) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=plotlyjs)


def story_table(story: ModelStory) -> pd.DataFrame:
    """The model versions, oldest first, with times as text (shared by HTML and PDF)."""
    return story.history.assign(created=story.history["created"].dt.strftime("%Y-%m-%d %H:%M"))


STORY_NOTE = (
    "Alarms a day: events of each model's run over the whole dataset. Held-out F1: on labels the "
    "version never learned from."
)


def _story_section(report: Report) -> str:
    """What the labels changed: headline numbers, alarms a day per model, the versions table."""
    story = report.story
    verdicts = f"<p>{html.escape(report.verdicts())}</p>"
    if story is None:
        return (
            f"<h2>What the analysts' labels changed</h2>{verdicts}"
            f"<p>Model in use: {html.escape(report.model_in_use())}. No model has been trained "
            "from labels yet.</p>"
        )
    return (
        f"<h2>What the analysts' labels changed</h2>{verdicts}"
        f"<div class='kpis'>{_kpis(story.kpis())}</div>"
        f"{_figure(alarms_history_figure(story.history))}<p class='sub'>{STORY_NOTE}</p>"
        f"{_table(story_table(story))}"
    )


def _events_section(report: Report) -> str:
    if not report.events:
        return ""
    parts = ["<h2>The most severe events, explained</h2>"]
    for item in report.events:
        parts.append(
            f"<h3>{html.escape(item.title)}</h3><p>Verdict: {html.escape(item.verdict)}<br>"
            f"Top sensors: {html.escape(item.drivers)}</p>"
        )
        about = item.explanation.description if item.explanation is not None else item.note
        parts.append(f"<p class='sub'>{html.escape(about or '')}</p>")
        parts.extend(_figure(fig) for fig in item.figures())
    return "".join(parts)


def twin_section(report: FidelityReport | None, title: str = "") -> str:
    """The twin's fidelity and privacy checks and per-sensor distances, as an HTML section
    headed ``title`` (default "Synthetic twin")."""
    if report is None:
        return ""
    verdict = "passes every check" if report.passed else "fails at least one check"
    checks = report.table().to_html(
        index=False, border=0, classes="t", float_format="{:.4g}".format
    )
    sensors = report.sensors.to_html(
        index=False, border=0, classes="t", float_format="{:.3f}".format
    )
    title = html.escape(title or "Synthetic twin")
    note = twin_note(report)
    return (
        f"<h2>{title}: {verdict}</h2>{checks}<p class='sub'>{html.escape(note)}</p>"
        f"<h3>Per sensor (worst asset)</h3>{sensors}"
    )


def _twin_part(part: TwinPart | None) -> str:
    if part is None:
        return ""
    if part.fidelity is None:
        return f"<h2>{html.escape(part.title)}</h2><p class='sub'>{html.escape(part.note)}</p>"
    return twin_section(part.fidelity, part.title)


def twin_note(report: FidelityReport) -> str:
    """What the detector check measured, in words (shared by HTML and PDF)."""
    return (
        f"Train on twin, test on real: F1 {report.f1_twin:.3f} against {report.f1_real:.3f} "
        "trained on the real data, graded on the same real faults."
    )


def html_report(report: Report) -> str:
    """KPIs, asset health, the timeline, open events, the most severe events explained and what
    labelling changed, in one HTML file (plotly.js inlined once)."""
    title = html.escape(report.title)
    overview = report.overview
    kpis = _kpis([(k, v, None) for k, v in overview.kpis])
    timeline = _figure(events_timeline(overview.queue), plotlyjs=True)
    assets = overview.assets.to_html(index=False, border=0, classes="t", na_rep="-")
    events = report.open_events().to_html(index=False, border=0, classes="t", na_rep="-")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937}}
h1{{margin-bottom:.2rem}} .sub{{color:#6b7280}}
.kpis{{display:flex;gap:1rem;flex-wrap:wrap;margin:1.5rem 0}}
.kpi{{border:1px solid #e5e7eb;border-radius:8px;padding:.8rem 1.2rem;min-width:140px}}
.kpi .v{{font-size:1.6rem;font-weight:600}} .kpi .l{{color:#6b7280;font-size:.85rem}}
table.t{{border-collapse:collapse;width:100%;font-size:.9rem}}
table.t th,table.t td{{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left}}
</style></head><body>
<h1>{title}</h1>
<div class="sub">{html.escape(report.subtitle)}</div>
<div class="kpis">{kpis}</div>
<h2>Asset health</h2>{assets}
<h2>Events over time</h2>{timeline}
<h2>Most severe open events</h2>{events}
{_events_section(report)}
{_story_section(report)}
{_twin_part(report.twin)}
</body></html>"""
