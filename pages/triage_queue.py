"""Triage's review queue: filters, progress, one event's verdict and chart, bulk, find similar."""

import streamlit as st

from core import detect, labels, learn
from core.charts.triage import match_table, thumbnail_figure
from pages import ui
from pages.triage_common import (
    CURRENT,
    FLASH,
    FOUND,
    GEN,
    NO_KIND,
    SHOWN,
    VERDICT_BUTTONS,
    Desk,
    apply,
    chart_range,
    picked_rows,
    time_slider,
)


def queue_filter(desk: Desk) -> labels.QueueFilter:
    info, kinds = desk.info, desk.kinds
    with st.expander("Filters", icon=":material/filter_list:"):
        c = st.columns(5)
        status = c[2].multiselect(
            "Status", labels.STATUSES, format_func=labels.STATUS_TEXT.get, key="triage_f_status"
        )
        start, end = time_slider(desk, "Time range", "triage_f_time")
        return labels.QueueFilter(
            assets=tuple(c[0].multiselect("Asset", info.assets, key="triage_f_asset")),
            sensors=tuple(c[1].multiselect("Sensor", info.sensors, key="triage_f_sensor")),
            statuses=tuple(status),
            kinds=tuple(c[3].multiselect("Kind", kinds, key="triage_f_kind")),
            start=start,
            end=end,
            min_score=c[4].number_input("Min. peak score", value=None, key="triage_f_score"),
        )


def show_progress(queue) -> None:
    p = labels.review_progress(queue)
    precision = f"{p.precision:.0%}" if p.precision is not None else "–"
    st.progress(
        p.n_reviewed / p.n_events if p.n_events else 0.0,
        text=f"Reviewed {p.n_reviewed} of {p.n_events} events · detector precision so far "
        f"{precision} ({p.n_confirmed} confirmed, {p.n_false_alarm} false alarms, "
        f"{p.n_unsure} unsure)",
    )


def bulk_actions(desk: Desk, chosen) -> None:
    con, info, analyst, kinds = desk.con, desk.info, desk.analyst, desk.kinds
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


def refuse_if_changed(shown, event) -> None:
    """Stop a verdict whose event is not the one, or not as, the analyst saw (say why)."""
    if why := labels.event_changed(shown, event):
        st.session_state[FLASH] = ("warning", why)
        st.rerun()


def event_detail(desk: Desk, run_id: int, queue, pos: int) -> None:
    """One event: navigation, its chart, verdict with kind, sensors and comment, range actions."""
    con, info, analyst, kinds = desk.con, desk.info, desk.analyst, desk.kinds
    event, after = labels.queue_event(queue, pos), labels.queue_event(queue, pos + 1)
    shown = st.session_state.get(SHOWN)  # what this analyst saw when they clicked
    st.session_state[CURRENT] = event["event_id"]  # stay on it, wherever the queue moves it
    st.session_state[SHOWN] = labels.event_snapshot(event)
    nav = st.columns([1, 1, 8], vertical_alignment="center")
    for col, step, text in ((nav[0], -1, "Previous"), (nav[1], 1, "Next")):
        if col.button(text, key=f"triage_{text.lower()}", width="stretch"):
            st.session_state[CURRENT] = labels.queue_event(queue, pos + step)["event_id"]
            st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # untick the table's row
            st.rerun()
    nav[2].markdown(f"**Event {pos + 1} of {len(queue)}** · {ui.plain(labels.event_title(event))}")
    key = f"{run_id}_{event['event_id']}"
    c = st.columns([4, 2, 3], vertical_alignment="bottom")
    sensors = c[0].multiselect(
        "Involved sensors",
        info.sensors,
        default=labels.event_sensors(event, info.sensors),
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
            refuse_if_changed(shown, event)
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
    view = labels.event_view(con, run_id, event, sensors)
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
        refuse_if_changed(shown, event)
        apply(
            "Event extent corrected.",
            lambda: labels.set_event_extent(con, info.id, event, *selected, analyst, kind, sensors),
        )


def find_similar(desk: Desk, label_id: int) -> None:
    """Search every asset for look-alikes of a labelled event; give chosen ones its label."""
    con, info, analyst = desk.con, desk.info, desk.analyst
    label = labels.get_label(con, label_id)
    st.caption(
        f"Looks for the shape of label #{label_id} on {ui.plain(', '.join(label['sensors']))}."
    )
    if st.button("Search all assets", key="triage_similar_go", icon=":material/search:"):
        st.session_state[FOUND] = (
            label_id,
            ui.guarded(
                lambda: labels.find_similar(
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
            lambda: labels.label_matches(con, info.id, found, ranks, label, analyst),
        )


def review_queue(desk: Desk) -> int | None:
    con, info = desk.con, desk.info
    past = detect.list_runs(con, info.id)
    names = {r.id: r.label for r in past}
    focus = st.session_state.pop(ui.TRIAGE_FOCUS, None)  # (run, event) handed over by Learn
    if focus is not None and focus[0] in names:
        st.session_state["triage_run"], st.session_state[CURRENT] = focus
    ids, in_use = list(names), learn.run_in_use(con, info.id)
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
    flt = queue_filter(desk)
    whole = labels.review_queue(con, run_id)
    show_progress(whole)
    queue = labels.filter_queue(whole, flt)
    picked = picked_rows(labels.queue_table(queue), "triage_table")
    if picked != st.session_state.get("triage_last_pick"):  # a new click opens that event
        st.session_state["triage_last_pick"] = picked
        if len(picked) == 1:
            st.session_state[CURRENT] = labels.queue_event(queue, picked[0])["event_id"]
    if len(picked) > 1:
        bulk_actions(desk, queue.iloc[picked])
    if queue.empty:
        st.info("No event matches the filters.")
        return run_id
    pos = labels.queue_position(queue, st.session_state.get(CURRENT))
    event_detail(desk, run_id, queue, pos)
    label_id = labels.queue_event(queue, pos)["label_id"]
    if label_id is not None:
        with st.expander("Find similar", icon=":material/search:"):
            find_similar(desk, label_id)
    return run_id
