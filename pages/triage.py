"""Triage: review a run's events, label them or a box-selected range, find similar, audit."""

from collections.abc import Callable

import streamlit as st

from core import label_io, labels, modes, runs, similar, triage, versions
from core.charts.triage import label_view_figure, match_table, thumbnail_figure
from core.errors import CoreError
from pages import ui

VERDICT_BUTTONS = {"confirmed": "Confirm", "false_alarm": "False alarm", "unsure": "Unsure"}
FLASH, GEN, CURRENT, FOUND = "triage_flash", "triage_generation", "triage_event", "triage_found"
AUDIT_ROWS = 300
NO_KIND = "not set"


def apply(done: str, action: Callable[[], object], nothing: str | None = None) -> None:
    """Run a core write, keep its outcome to show after the refresh, then refresh the page.
    ``nothing``: what to say (as news, not success) when the write returns None."""
    try:
        result = action()
    except CoreError as exc:
        st.session_state[FLASH] = ("error", str(exc))
    else:
        if result is None and nothing is not None:
            st.session_state[FLASH] = ("info", nothing)
        else:
            st.session_state[FLASH] = ("success", getattr(result, "description", done))
        st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # rows moved: reset selections
    st.rerun()


def chart_range(key: str, view: triage.LabelView) -> tuple | None:
    """Draw the labelling chart; return the box-selected time range, if any.

    The figure must not depend on the selection: a changed figure clears it in the browser.
    """
    event = st.plotly_chart(
        label_view_figure(view), key=key, on_select="rerun", selection_mode="box"
    )
    return triage.selected_range(event["selection"]["box"] if event else None)


def time_slider(label: str, key: str) -> tuple:
    span = (info.time_start, info.time_end)
    return st.slider(label, *span, span, format="YYYY-MM-DD HH:mm", key=key)


def queue_filter() -> triage.QueueFilter:
    with st.expander("Filters", icon=":material/filter_list:"):
        c = st.columns(5)
        status = c[2].multiselect(
            "Status", labels.STATUSES, format_func=labels.STATUS_TEXT.get, key="triage_f_status"
        )
        start, end = time_slider("Time range", "triage_f_time")
        return triage.QueueFilter(
            assets=tuple(c[0].multiselect("Asset", info.assets, key="triage_f_asset")),
            sensors=tuple(c[1].multiselect("Sensor", info.sensors, key="triage_f_sensor")),
            statuses=tuple(status),
            kinds=tuple(c[3].multiselect("Kind", kinds, key="triage_f_kind")),
            start=start,
            end=end,
            min_score=c[4].number_input("Min. peak score", value=None, key="triage_f_score"),
        )


def show_progress(queue) -> None:
    p = triage.review_progress(queue)
    precision = f"{p.precision:.0%}" if p.precision is not None else "–"
    st.progress(
        p.n_reviewed / p.n_events if p.n_events else 0.0,
        text=f"Reviewed {p.n_reviewed} of {p.n_events} events · detector precision so far "
        f"{precision} ({p.n_confirmed} confirmed, {p.n_false_alarm} false alarms, "
        f"{p.n_unsure} unsure)",
    )


def bulk_actions(chosen) -> None:
    c = st.columns([3, 1, 1, 1, 2], vertical_alignment="bottom")
    kind = c[0].selectbox(
        f"Fault kind for the {len(chosen)} selected",
        kinds,
        index=None,
        placeholder=NO_KIND,
        key="triage_bk",
    )
    for col, (verdict, text) in zip(c[1:4], VERDICT_BUTTONS.items(), strict=True):
        if col.button(f"{text} all", key=f"triage_bulk_{verdict}"):
            apply(
                f"{text}: {len(chosen)} events.",
                lambda v=verdict: labels.label_events(
                    con, info.id, chosen, v, analyst, kind=kind if v == "confirmed" else None
                ),
            )


def event_detail(run_id: int, queue, pos: int) -> None:
    """One event: navigation, its chart, verdict with kind, sensors and comment, range actions."""
    event, after = triage.queue_event(queue, pos), triage.queue_event(queue, pos + 1)
    nav = st.columns([1, 1, 8], vertical_alignment="center")
    for col, step, text in ((nav[0], -1, "Previous"), (nav[1], 1, "Next")):
        if col.button(text, key=f"triage_{text.lower()}", width="stretch"):
            st.session_state[CURRENT] = triage.queue_event(queue, pos + step)["event_id"]
            st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # untick the table's row
            st.rerun()
    nav[2].markdown(f"**Event {pos + 1} of {len(queue)}** · {triage.event_title(event)}")
    key = f"{run_id}_{event['event_id']}"
    c = st.columns([4, 2, 3], vertical_alignment="bottom")
    sensors = c[0].multiselect(
        "Involved sensors",
        info.sensors,
        default=triage.event_sensors(event, info.sensors),
        key=f"triage_sensors_{key}",
    )
    index = kinds.index(event["kind"]) if event["kind"] in kinds else None  # nobody chose one
    kind = c[1].selectbox(
        "Fault kind", kinds, index=index, placeholder=NO_KIND, key=f"triage_kind_{key}"
    )
    comment = c[2].text_input("Comment", value=event["comment"], key=f"triage_comment_{key}")
    b = st.columns([1, 1, 1, 1, 3])
    for col, (verdict, text) in zip(b, VERDICT_BUTTONS.items(), strict=False):
        primary = "primary" if verdict == "confirmed" else "secondary"
        if col.button(text, key=f"triage_{verdict}", type=primary, width="stretch"):
            st.session_state[CURRENT] = after["event_id"]
            apply(
                f"{text}: event {event['event_id']}.",
                lambda v=verdict, k=kind if verdict == "confirmed" else None: labels.label_events(
                    con, info.id, queue.iloc[[pos]], v, analyst, k, sensors, comment
                ),
            )
    if b[3].button("Save comment", key="triage_comment_save", disabled=not event["label_id"]):
        apply(
            "Comment saved.",
            lambda: labels.update_labels(con, [event["label_id"]], analyst, {"comment": comment}),
        )
    view = triage.event_view(con, run_id, event, sensors)
    selected = chart_range(f"triage_chart_{key}", view)
    if not selected:
        st.caption(
            "Orange: the event · red/grey/amber: confirmed/false-alarm/unsure labels · dashed: "
            "threshold. Drag across the chart to select a range, then label it or make it the "
            "event's corrected extent."
        )
        return
    st.caption(f"Selected on the chart: {selected[0]:%Y-%m-%d %H:%M:%S} → {selected[1]:%H:%M:%S}")
    r = st.columns([2, 2, 4])
    draft = labels.LabelDraft(event["asset"], *selected, "confirmed", kind, tuple(sensors), comment)
    if r[0].button("Label range as analyst-found", key="triage_range_label", type="primary"):
        apply(
            "Analyst-found label created.",
            lambda: labels.create_labels(con, info.id, [draft], analyst),
        )
    if r[1].button("Set as the event's extent", key="triage_range_extent"):
        apply(
            "Event extent corrected.",
            lambda: triage.set_event_extent(con, info.id, event, *selected, analyst, kind, sensors),
        )


def find_similar(label_id: int) -> None:
    """Search every asset for look-alikes of a labelled event; give chosen ones its label."""
    label = labels.get_label(con, label_id)
    st.caption(f"Looks for the shape of label #{label_id} on {', '.join(label['sensors'])}.")
    if st.button("Search all assets", key="triage_similar_go", icon=":material/search:"):
        st.session_state[FOUND] = (
            label_id,
            ui.guarded(
                lambda: similar.find_similar(
                    con,
                    info.id,
                    label["asset"],
                    label["start_ts"],
                    label["end_ts"],
                    label["sensors"],
                )
            ),
        )
    query_id, found = st.session_state.get(FOUND, (None, None))
    if query_id != label_id or found is None:
        return
    st.caption(
        f"{len(found.matches)} best of {found.n_windows:,} windows ({found.length} samples) "
        f"in {found.elapsed_s:.2f} s. Dotted grey: the labelled event."
    )
    grid = st.columns(4)
    for i in range(len(found.matches)):
        grid[i % 4].plotly_chart(
            thumbnail_figure(found, i), key=f"triage_thumb_{i}", config={"staticPlot": True}
        )
    st.dataframe(match_table(found), hide_index=True)
    ranks = st.multiselect("Matches to label", found.matches["rank"].tolist(), key="triage_pick")
    if st.button(f"Give {len(ranks)} match(es) this label", disabled=not ranks):
        apply(
            f"Labelled {len(ranks)} matches.",
            lambda: similar.label_matches(con, info.id, found, ranks, label, analyst),
        )


def review_queue() -> int | None:
    past = runs.list_runs(con, info.id)
    names = {r.id: r.label for r in past}
    focus = st.session_state.pop(ui.TRIAGE_FOCUS, None)  # (run, event) handed over by Learn
    if focus is not None and focus[0] in names:
        st.session_state["triage_run"], st.session_state[CURRENT] = focus
    ids, in_use = list(names), versions.run_in_use(con, info.id)
    run_id = st.selectbox(
        "Run",
        ids,
        index=ids.index(in_use) if in_use in ids else 0,
        format_func=names.get,
        key="triage_run",
    )
    if run_id is None:
        st.info("No detection run on this dataset yet: run one on the **Detect** page.")
        return None
    flt = queue_filter()
    whole = triage.review_queue(con, run_id)
    show_progress(whole)
    queue = triage.filter_queue(whole, flt)
    picked = st.dataframe(
        triage.queue_table(queue),
        hide_index=True,
        key=f"triage_table_{st.session_state.get(GEN, 0)}",
        on_select="rerun",
        selection_mode="multi-row",
    )["selection"]["rows"]
    if picked != st.session_state.get("triage_last_pick"):  # a new click opens that event
        st.session_state["triage_last_pick"] = picked
        if len(picked) == 1:
            st.session_state[CURRENT] = triage.queue_event(queue, picked[0])["event_id"]
    if len(picked) > 1:
        bulk_actions(queue.iloc[picked])
    if queue.empty:
        st.info("No event matches the filters.")
        return run_id
    pos = triage.queue_position(queue, st.session_state.get(CURRENT))
    event_detail(run_id, queue, pos)
    label_id = triage.queue_event(queue, pos)["label_id"]
    if label_id is not None:
        with st.expander("Find similar", icon=":material/search:"):
            find_similar(label_id)
    return run_id


def browse_and_mark(run_id: int | None) -> None:
    """Any asset and window: box-select a range to label it or mark an operating mode."""
    c = st.columns([1, 3])
    asset = c[0].selectbox("Asset", info.assets, key="triage_b_asset")
    shown = c[1].multiselect("Sensors", info.sensors, info.sensors[:2], key="triage_b_sensors")
    start, end = time_slider("Window", "triage_b_window")
    view = triage.label_view(con, info.id, asset, shown, start, end, run_id)
    selected = chart_range("triage_b_chart", view)
    if not selected:
        st.caption("Drag across the chart to select a range. Slate: operating-mode marks.")
    else:
        st.caption(f"Selected: {selected[0]:%Y-%m-%d %H:%M:%S} → {selected[1]:%Y-%m-%d %H:%M:%S}")
        c = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
        verdict = c[0].selectbox(
            "Verdict", labels.VERDICTS, format_func=labels.STATUS_TEXT.get, key="triage_b_v"
        )
        kind = c[1].selectbox(
            "Fault kind", kinds, index=None, placeholder=NO_KIND, key="triage_b_kind"
        )
        comment = c[2].text_input("Comment", key="triage_b_comment")
        kind = kind if verdict == "confirmed" else None
        draft = labels.LabelDraft(asset, *selected, verdict, kind, tuple(view.sensors), comment)
        if c[3].button("Create label", key="triage_b_create", type="primary", width="stretch"):
            apply("Label created.", lambda: labels.create_labels(con, info.id, [draft], analyst))
        c = st.columns([2, 2, 5], vertical_alignment="bottom")
        mode = c[0].selectbox("Operating mode", modes.MODES, key="triage_b_mode")
        if c[1].button("Mark the range", key="triage_b_mark"):
            apply(
                f"Marked as {mode}.",
                lambda: modes.add_mode(con, info.id, asset, *selected, mode, analyst, comment),
            )
    marks = modes.list_modes(con, info.id)
    if not marks.empty:
        st.markdown("**Operating-mode marks** (kept out of training and alarms)")
        st.dataframe(modes.modes_table(marks), hide_index=True)
        c = st.columns([2, 1, 5], vertical_alignment="bottom")
        mark = c[0].selectbox("Mark", marks["id"].tolist(), key="triage_b_mark_id")
        if c[1].button("Remove", key="triage_b_unmark"):
            apply(f"Mark #{mark} removed.", lambda: modes.remove_mode(con, mark, analyst))


def labels_and_audit() -> None:
    current = labels.current_labels(con, info.id)
    n = len(current)
    st.markdown(f"**{n} label{'' if n == 1 else 's'}** on {info.name} (they outlive runs)")
    picked = st.dataframe(
        triage.labels_table(current),
        hide_index=True,
        key=f"triage_labels_{st.session_state.get(GEN, 0)}",
        on_select="rerun",
        selection_mode="multi-row",
    )["selection"]["rows"]
    if picked and st.button(f"Delete {len(picked)} selected label(s)", key="triage_delete"):
        ids = current.iloc[picked]["label_id"].tolist()
        apply("Deleted (undo brings them back).", lambda: labels.delete_labels(con, ids, analyst))
    st.markdown(f"**Audit trail** (every change, newest first; the last {AUDIT_ROWS} shown)")
    st.dataframe(labels.audit_log(con, info.id, limit=AUDIT_ROWS), hide_index=True)
    with st.expander("Fault-kind taxonomy", icon=":material/category:"):
        text = st.text_area("One kind per line", "\n".join(kinds), key="triage_taxonomy")
        if st.button("Save taxonomy", key="triage_taxonomy_save"):
            apply("Taxonomy saved.", lambda: labels.set_fault_kinds(con, text.splitlines()))


def import_export() -> None:
    c = st.columns([1, 1, 4])
    for col, fmt in zip(c, ("csv", "parquet"), strict=False):
        col.download_button(
            f"Export labels as {fmt.upper()}",
            lambda fmt=fmt: label_io.export_labels(ui.workspace(), info.id, fmt),
            file_name=f"labels_{info.id}.{fmt}",
            key=f"triage_export_{fmt}",
        )
    st.caption(
        "Columns: asset, start, end, verdict (confirmed / false alarm / unsure), kind, sensors "
        "(separated by ';' in CSV), comment. A file with any bad row is rejected whole."
    )
    upload = st.file_uploader("Import labels", type=["csv", "parquet"], key="triage_import")
    if upload is not None and st.button("Import", key="triage_import_go"):
        apply(
            "Imported.",
            lambda: label_io.import_labels(con, info.id, upload.getvalue(), upload.name, analyst),
        )


con = ui.workspace()
info = ui.sidebar(con)
st.title("Triage")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.stop()
analyst, kinds = ui.analyst_name(), labels.fault_kinds(con)
notice = st.container()  # always there, so the tabs below keep their place (and open tab)
if flash := st.session_state.pop(FLASH, None):
    {"success": notice.success, "info": notice.info}.get(flash[0], notice.error)(flash[1])
if analyst == ui.ANONYMOUS:
    st.caption(
        f"Your verdicts are saved as “{ui.ANONYMOUS}”: enter your name under **Analyst** in the "
        "sidebar so the audit trail says who decided."
    )
if st.button("Undo my last label change", icon=":material/undo:", key="triage_undo"):
    apply("Undone.", lambda: labels.undo_last(con, info.id, analyst), "Nothing to undo.")
queue_tab, chart_tab, labels_tab, io_tab = st.tabs(
    ["Review queue", "Label the chart", "Labels & audit", "Import / export"]
)
with queue_tab:
    active_run = review_queue()
with chart_tab:
    browse_and_mark(active_run)
with labels_tab:
    labels_and_audit()
with io_tab:
    import_export()
