"""Learn: retrain from labels, tune the threshold, manage model versions, label next, drift."""

import streamlit as st

from core import labels, learn
from core.charts.learning import (
    comparison_figure,
    drift_figure,
    drift_timeline_figure,
    threshold_figure,
)
from core.labels import labels_needed
from core.learn import THRESHOLD_MULTIPLIERS, ThresholdPreview
from pages import ui

RETRAINED = "learn_retrained"  # what the retrain made, shown after the rerun that follows it
SHOW_VERSION = "learn_show_version"  # the version the Versions tab picks on the next run
THRESHOLD_SAVED = "learn_threshold_saved"  # what Save on the Threshold tab made, after the rerun
# The caches below are keyed by the label watermark and the dataset's row count: a batch
# appended on Load data adds rows and scores to the run in use, so its drift, preview and
# suggestions change although no label or version did.


@st.cache_resource(max_entries=4, show_spinner="Preparing the preview…")
def cached_preview(_con, version_id: int, watermark: int, n_rows: int) -> ThresholdPreview:
    return learn.version_preview(_con, version_id)


@st.cache_data(max_entries=4, show_spinner="Ranking unreviewed events…")
def cached_suggestions(_con, dataset_id: int, run_id: int | None, watermark: int, n_rows: int):
    return learn.suggest(_con, dataset_id, run_id)


@st.cache_resource(max_entries=4, show_spinner="Comparing new data with the training window…")
def cached_drift(_con, dataset_id: int, version_id: int, n_rows: int) -> learn.DriftReport:
    return learn.drift_report(_con, dataset_id, version_id)


def verdict(comparison: dict, version_id: int) -> None:
    """The champion/challenger comparison of a version (its chart only when held-out confirmed
    labels graded both), with the promote button."""
    if comparison["after"].get("n_confirmed"):
        st.plotly_chart(
            comparison_figure(comparison["before"], comparison["after"], comparison["champion"]),
            key=f"learn_cmp_{version_id}",
        )
    (st.success if comparison["proposed"] else st.info)(ui.plain(comparison["reason"]))


con = ui.workspace()
info = ui.sidebar(con)
st.title("Learn")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.page_link("pages/data.py", label="Go to Load data", icon=":material/upload_file:")
    st.stop()

labels_now = labels.current_labels(con, info.id)
counts = labels_now["verdict"].value_counts()
_, watermark = learn.label_snapshot(con, info.id)
all_versions = learn.list_versions(con, info.id)
champion = next((v for v in all_versions if v.active), None)
cols = st.columns(4)
cols[0].metric("Confirmed", int(counts.get("confirmed", 0)))
cols[1].metric("False alarms", int(counts.get("false_alarm", 0)))
cols[2].metric("Versions", len(all_versions))
cols[3].metric("Active model", f"v{champion.id}" if champion else "none")
need = labels_needed(labels_now)
if labels_now.empty:
    st.info(
        "No labels yet. Review events on the **Triage** page: every verdict tunes the threshold, "
        f"and with {need} the semi-supervised model joins in."
    )
elif need:
    st.caption(f"Semi-supervised model: needs {need}. Until then, only the threshold learns.")

retrain_tab, threshold_tab, versions_tab, next_tab, drift_tab = st.tabs(
    ["Retrain", "Threshold", "Versions", "Label next", "Drift"]
)
if saved := st.session_state.pop(RETRAINED, None):  # what the retrain that just ran made
    retrain_tab.success(ui.plain(saved))
with retrain_tab, st.form("learn_retrain"):
    left, right = st.columns(2)
    budget_on = left.toggle("Alert budget instead of best F1", key="learn_budget_on")
    # no min/max: Streamlit keeps an out-of-range entry red and the form's button then does
    # nothing, silently; core refuses a bad budget in words
    budget = left.number_input("At most alarms a day", value=5.0, step=0.5, key="learn_budget")
    semi = right.toggle("Semi-supervised model when enough labels", True, key="learn_semi")
    margin = right.number_input("Margin around confirmed (samples)", 0, 10_000, 60, key="learn_m")
    taught = left.toggle(
        "Train on false alarms as normal data",
        key="learn_fa",
        help="For a model that floods (trained on too little, or before the plant changed): "
        "the stretches you called false alarms become normal data, the detector fitted "
        "without them keeps its say, and the alarm line keeps half of the first run's alarms so "
        "weak faults stay found. On 25 flooding aged demo plants 10 verdicts cut false alarms "
        "to 0.31-0.47x and kept every fault the flood found on 20 (bench/bench_learning_flood.py).",
    )
    refusal = learn.retrain_refusal(labels_now, info.name)
    if refusal:
        st.info(ui.plain(refusal))
    if st.form_submit_button(
        "Retrain with labels",
        type="primary",
        icon=":material/school:",
        disabled=refusal is not None,
    ):
        config = learn.RetrainConfig(
            info.id,
            objective="budget" if budget_on else "f1",
            budget_per_day=budget if budget_on else None,
            semi_supervised=semi,
            margin_samples=margin,
            learn_false_alarms=taught,
        )
        with st.status("Retraining…", expanded=True) as status:
            bar = st.progress(0.0)
            done = ui.guarded(lambda: learn.retrain(con, config, ui.analyst_name(), bar.progress))
            status.update(
                label=f"Saved v{done.version.id}" if done else "Retraining failed",
                state="complete" if done else "error",
                expanded=not done,  # a failure keeps its reason in view
            )
        if done:
            st.session_state[SHOW_VERSION] = done.version.id
            st.session_state[RETRAINED] = learn.retrain_summary(con, done)
            st.rerun()

if not all_versions:
    for tab in (threshold_tab, versions_tab, drift_tab):
        tab.info("No model version yet: press **Retrain with labels** on the Retrain tab.")
names = {v.id: v.title for v in all_versions}  # "(active)" is said beside the picker
newest = all_versions[0] if all_versions else None
with versions_tab:
    if newest is not None:
        if (shown := st.session_state.pop(SHOW_VERSION, None)) in names:  # before the picker
            st.session_state["learn_version"] = shown
        if st.session_state.get("learn_version") not in names:
            st.session_state["learn_version"] = newest.id
        chosen = st.selectbox("Version", list(names), format_func=names.get, key="learn_version")
        version = next(v for v in all_versions if v.id == chosen)
        if version.metrics.get("comparison"):
            verdict(version.metrics["comparison"], version.id)
        st.caption(
            f"{ui.plain(version.notes)} Training: {version.training.get('description', '–')}."
        )
        if version.active:
            st.badge("Active model", icon=":material/check_circle:", color="green")
        promote = not version.active and st.button(f"Promote v{version.id}", type="primary")
        # a refusal stays in view: only a promotion done reruns the page
        if promote and ui.guarded(lambda: learn.promote(con, version.id, ui.analyst_name())):
            st.rerun()
        # guarded: another session may have deleted the dataset, versions and all, since the
        # top of this run (a retrain takes a while)
        found = ui.guarded(
            lambda: (learn.compare_versions(con, list(names)), learn.export_version(con, chosen))
        )
        if found is not None:
            table, model_file = found
            st.dataframe(table, hide_index=True)
            st.download_button(
                f"Download v{version.id} (.skops)",
                model_file,
                f"vigil_v{version.id}.skops",
                key="learn_export",
            )

with threshold_tab:
    if note := st.session_state.pop(THRESHOLD_SAVED, None):  # the new version is shown at 1
        st.success(ui.plain(note))
        st.session_state["learn_th"] = 1.0
    if newest is not None:
        version_id = st.session_state.get("learn_version", newest.id)
        preview = ui.guarded(lambda: cached_preview(con, version_id, watermark, info.n_rows))
        if preview is not None:
            st.caption(
                f"v{version_id} (pick another on the Versions tab): move its alarm line; 1 is "
                "where it is now. These are its own scores on the labels it learned from; the "
                "held-out numbers are on the Versions tab."
            )
            by_budget = st.toggle("Set by alert budget", key="learn_th_budget")
            if by_budget:
                per_day = st.number_input("At most alarms a day", value=5.0, key="learn_pd")
                # F1-best within it; a budget that is no positive number is refused in words
                m = ui.guarded(lambda: learn.tune_threshold(preview, "budget", per_day))
                m = 1.0 if m is None else m  # refused: the saved line stays in view
            else:
                m = st.select_slider("Threshold", THRESHOLD_MULTIPLIERS, 1.0, key="learn_th")
            point = preview.at(m)
            row = st.columns(5)
            for column, (label, value) in zip(row, point.shown().items(), strict=False):
                column.metric(label, value)
            row[3].metric("Alarms a day", f"{point.alarms_per_day:.1f}")
            row[4].metric("False alarms still alarming", point.false_alarms)
            st.caption(
                f"Against the labels: {point.caught} of {point.caught + point.missed} confirmed "
                "anomalies alarm. Alarms a day count every alarm in the dataset."
            )
            st.plotly_chart(
                threshold_figure(preview.curve(THRESHOLD_MULTIPLIERS), m),
                key="learn_th_fig",
            )
            st.caption("Solid line: the preview; dashed: the saved alarm line.")
            if m != 1.0 and st.button(f"Save x{m:.3g} as a new version", key="learn_th_save"):
                with st.spinner("Scoring with the new threshold…"):
                    saved = ui.guarded(
                        lambda: learn.save_threshold(con, version_id, m, ui.analyst_name())
                    )
                if saved:  # the picker is drawn already: it follows on the next run
                    st.session_state[SHOW_VERSION] = saved.id
                    st.session_state[THRESHOLD_SAVED] = f"Saved v{saved.id}: {saved.notes}"
                    st.rerun()

with next_tab:
    run_id = learn.run_in_use(con, info.id)
    todo = (
        None
        if run_id is None
        else ui.guarded(lambda: cached_suggestions(con, info.id, run_id, watermark, info.n_rows))
    )
    if run_id is None:  # an empty state, not an error
        st.info("No detection run yet: suggestions are chosen among a run's events (**Detect**).")
    elif todo is None or todo.empty:
        st.info("Nothing to suggest: every event of the latest run is reviewed, or none exists.")
    else:
        pick = st.dataframe(
            todo[["event_id", "asset", "start", "peak_score", "priority", "reason"]],
            hide_index=True,
            column_config={
                "event_id": "Event",
                "asset": "Asset",
                "start": st.column_config.DatetimeColumn("Start", format="YYYY-MM-DD HH:mm"),
                "peak_score": st.column_config.NumberColumn("Peak (x line)", format="%.2f"),
                "priority": st.column_config.NumberColumn("Priority", format="%.2f"),
                "reason": st.column_config.TextColumn("Why this one", width="large"),
            },
            on_select="rerun",
            selection_mode="single-row",
            key="learn_next",
        )
        rows = pick["selection"]["rows"] if pick else []
        if st.button("Review in Triage", disabled=not rows, icon=":material/fact_check:"):
            event = todo.iloc[rows[0]]
            st.session_state[ui.TRIAGE_FOCUS] = (int(event["run_id"]), int(event["event_id"]))
            st.switch_page("pages/triage.py")

with drift_tab:
    if champion is None and all_versions:
        st.info("Promote a version first: drift compares new data with its training window.")
    elif champion is not None:
        report = ui.guarded(lambda: cached_drift(con, info.id, champion.id, info.n_rows))
        if report is not None:
            if report.retrain_suggested:
                st.warning(ui.plain("Retraining suggested: " + "; ".join(report.reasons) + "."))
            else:
                st.success(f"No drift above PSI {learn.PSI_DRIFT} against v{report.version_id}.")
            st.plotly_chart(drift_figure(report), key="learn_drift")
            if not report.timeline.empty:
                st.plotly_chart(drift_timeline_figure(report), key="learn_drift_time")
            st.dataframe(report.table.round(3), hide_index=True)
