"""A self-contained HTML report for people who will never open Vigil (works offline)."""

from __future__ import annotations

import html
from datetime import datetime

from core.charts.overview import alarms_history_figure, events_timeline
from core.share.overview import ModelStory, Overview, events_export
from core.synth.fidelity import FidelityReport


def _story_section(story: ModelStory | None) -> str:
    """What the labels changed: headline numbers, alarms a day per model, the history table."""
    if story is None:
        return ""
    kpis = "".join(
        f"<div class='kpi'><div class='v'>{html.escape(v)}</div>"
        f"<div class='l'>{html.escape(k)}{' · ' + html.escape(c) if c else ''}</div></div>"
        for k, v, c in story.kpis()
    )
    figure = alarms_history_figure(story.history).to_html(full_html=False, include_plotlyjs=False)
    history = story.history.assign(created=story.history["created"].dt.strftime("%Y-%m-%d %H:%M"))
    table = history.to_html(
        index=False, border=0, classes="t", na_rep="-", float_format=lambda x: f"{x:.2f}"
    )
    note = (
        "Alarms a day: events of each model's run over the whole dataset. Held-out F1: on labels "
        "the version never learned from."
    )
    return (
        f"<h2>What the analysts' labels changed</h2><div class='kpis'>{kpis}</div>{figure}"
        f"<p class='sub'>{note}</p>{table}"
    )


def twin_section(report: FidelityReport | None, twin_name: str = "") -> str:
    """The twin's fidelity and privacy checks and per-sensor distances, as an HTML section."""
    if report is None:
        return ""
    verdict = "passes every check" if report.passed else "fails at least one check"
    checks = report.table().to_html(
        index=False, border=0, classes="t", float_format="{:.4g}".format
    )
    sensors = report.sensors.to_html(
        index=False, border=0, classes="t", float_format="{:.3f}".format
    )
    title = f"Synthetic twin {html.escape(twin_name)}".strip()
    note = (
        f"Train on twin, test on real: F1 {report.f1_twin:.3f} against {report.f1_real:.3f} "
        "trained on the real data, graded on the same real faults."
    )
    return (
        f"<h2>{title}: {verdict}</h2>{checks}<p class='sub'>{html.escape(note)}</p>"
        f"<h3>Per sensor (worst asset)</h3>{sensors}"
    )


def html_report(
    overview: Overview,
    generated_by: str = "Vigil",
    story: ModelStory | None = None,
    twin: str = "",
) -> str:
    """KPIs, asset health, open events, the timeline, (with ``story``) what labelling changed
    and (with ``twin``, a `twin_section`) a synthetic twin's report, in one HTML file (plotly.js
    inlined once)."""
    info = overview.dataset
    title = f"Vigil report · {html.escape(info.name)}"
    run_line = (
        f"Run #{overview.run.id} ({html.escape(overview.run.detector_used or overview.run.detector)})"
        f", {overview.run.created_at:%Y-%m-%d %H:%M}"
        if overview.run
        else "No detection run yet"
    )
    kpis = "".join(
        f"<div class='kpi'><div class='v'>{html.escape(v)}</div>"
        f"<div class='l'>{html.escape(k)}</div></div>"
        for k, v in overview.kpis
    )
    timeline = events_timeline(overview.queue).to_html(full_html=False, include_plotlyjs=True)
    assets = overview.assets.to_html(index=False, border=0, classes="t", na_rep="-")
    open_events = events_export(overview)
    open_events = open_events[open_events["status"] == "unreviewed"].head(10)
    events = open_events.to_html(index=False, border=0, classes="t", na_rep="-")
    generated = f"{datetime.now():%Y-%m-%d %H:%M}"
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
<div class="sub">{html.escape(run_line)} · {info.n_rows:,} rows from {html.escape(info.source_file)}
 · generated {generated} by {html.escape(generated_by)}</div>
<div class="kpis">{kpis}</div>
<h2>Asset health</h2>{assets}
<h2>Events over time</h2>{timeline}
<h2>Most severe open events</h2>{events}
{_story_section(story)}
{twin}
</body></html>"""
