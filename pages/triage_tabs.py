"""Triage's other tabs: label any range of the chart, labels and audit, import / export."""

import streamlit as st

from core import detect, labels
from pages import ui
from pages.triage_common import NO_KIND, Desk, apply, chart_range, picked_rows, time_slider

AUDIT_ROWS = 300


def browse_and_mark(desk: Desk, run_id: int | None) -> None:
    """Any asset and window: box-select a range to label it or mark an operating mode."""
    con, info, analyst, kinds = desk.con, desk.info, desk.analyst, desk.kinds
    c = st.columns([1, 3])
    asset = c[0].selectbox("Asset", info.assets, key="triage_b_asset")
    key = f"triage_b_sensors_{info.id}"  # by dataset: another one's sensors are not options
    shown = c[1].multiselect("Sensors", info.sensors, info.sensors[:2], key=key)
    start, end = time_slider(desk, "Window", "triage_b_window")
    view = labels.label_view(con, info.id, asset, shown, start, end, run_id)
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
        mode = c[0].selectbox("Operating mode", detect.MODES, key="triage_b_mode")
        if c[1].button("Mark the range", key="triage_b_mark"):
            apply(
                f"Marked as {mode}.",
                lambda: detect.add_mode(con, info.id, asset, *selected, mode, analyst, comment),
            )
    marks = detect.list_modes(con, info.id)
    if not marks.empty:
        st.markdown("**Operating-mode marks** (kept out of training and alarms)")
        st.dataframe(detect.modes_table(marks), hide_index=True)
        c = st.columns([2, 1, 5], vertical_alignment="bottom")
        mark = c[0].selectbox("Mark", marks["id"].tolist(), key="triage_b_mark_id")
        if c[1].button("Remove", key="triage_b_unmark"):
            apply(f"Mark #{mark} removed.", lambda: detect.remove_mode(con, mark, analyst))


def labels_and_audit(desk: Desk) -> None:
    con, info, analyst, kinds = desk.con, desk.info, desk.analyst, desk.kinds
    current = labels.current_labels(con, info.id)
    n = len(current)
    st.markdown(
        f"**{n} label{'' if n == 1 else 's'}** on {ui.plain(info.name)} (they outlive runs)"
    )
    picked = picked_rows(labels.labels_table(current), "triage_labels")
    if picked and st.button(f"Delete {len(picked)} selected label(s)", key="triage_delete"):
        ids = current.iloc[picked]["label_id"].tolist()
        apply("Deleted (undo brings them back).", lambda: labels.delete_labels(con, ids, analyst))
    st.markdown(f"**Audit trail** (every change, newest first; the last {AUDIT_ROWS} shown)")
    st.dataframe(labels.audit_log(con, info.id, limit=AUDIT_ROWS), hide_index=True)
    with st.expander("Fault-kind taxonomy", icon=":material/category:"):
        text = st.text_area("One kind per line", "\n".join(kinds), key="triage_taxonomy")
        if st.button("Save taxonomy", key="triage_taxonomy_save"):
            apply("Taxonomy saved.", lambda: labels.set_fault_kinds(con, text.splitlines()))


def import_export(desk: Desk) -> None:
    con, info, analyst = desk.con, desk.info, desk.analyst
    c = st.columns([1, 1, 4])
    for col, fmt in zip(c, ("csv", "parquet"), strict=False):
        col.download_button(
            f"Export labels as {fmt.upper()}",
            lambda fmt=fmt: labels.export_labels(ui.workspace(), info.id, fmt),
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
            lambda: labels.import_labels(con, info.id, upload.getvalue(), upload.name, analyst),
        )
