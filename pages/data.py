"""Load data: the demo plant in one click, uploads, and the workspace's datasets."""

import streamlit as st

from core import store
from core.demo import load_demo
from core.explore import datasets_table
from core.uploads import ingest_upload
from pages import ui

LOADED = "data_loaded"  # (dataset name, warnings) shown after the rerun that follows a load

con = ui.workspace()
ui.sidebar(con)
st.title("Load data")

all_sets = store.list_datasets(con)
if not all_sets:
    st.info(
        "Your workspace is empty. Start with the **demo plant** — three pumps with coupled "
        "sensors and labelled faults — or upload your own readings."
    )

demo_col, upload_col = st.columns(2, gap="large")
with demo_col:
    st.subheader("Demo plant")
    st.caption(
        "Synthetic pumps (speed, flow, pressures, current, temperatures, vibration) with "
        "operating-mode changes, machine stops and injected faults whose ground truth is kept."
    )
    if st.button("Load the demo plant", type="primary", icon=":material/factory:"):
        with st.status("Generating the demo plant…", expanded=False) as status:
            info = ui.guarded(lambda: load_demo(con))
            if info is not None:
                ui.set_active_dataset(info.id)
                status.update(label=f"Loaded {info.name}", state="complete")
                st.rerun()
            status.update(label="The demo plant could not be loaded", state="error", expanded=True)

with upload_col:
    st.subheader("Your data")
    st.caption(
        "CSV (comma, semicolon or tab), Parquet or Excel. Wide: a timestamp column and one "
        "column per sensor, optionally an asset column. Long historian exports "
        "(timestamp, tag, value[, asset]) are pivoted. Workbook sheets with the same columns "
        "are stacked, one asset per sheet."
    )
    upload = st.file_uploader(
        "Readings file", type=["csv", "txt", "tsv", "parquet", "xlsx"], key="upload"
    )
    name = st.text_input("Dataset name (optional)", key="upload_name")
    if upload is not None and st.button("Load file", icon=":material/upload:"):
        with st.status(f"Loading {upload.name}…") as status:
            result = ui.guarded(
                lambda: ingest_upload(con, upload.getvalue(), upload.name, name or None)
            )
            if result is None:
                status.update(label=f"{upload.name} was not loaded", state="error", expanded=True)
            else:
                ui.set_active_dataset(result.dataset.id)
                status.update(label=f"Loaded {result.dataset.name}", state="complete")
                st.session_state[LOADED] = (result.dataset.name, result.warnings)
                st.rerun()  # the sidebar and the empty-workspace note must see the new dataset
    if loaded := st.session_state.pop(LOADED, None):
        st.success(f"Loaded {loaded[0]}.")
        for warning in loaded[1]:
            st.warning(warning)

all_sets = store.list_datasets(con)
if all_sets:
    st.subheader("Datasets in this workspace")
    st.dataframe(datasets_table(all_sets), hide_index=True, width="stretch")
    with st.expander("Delete a dataset"):
        names = {d.id: d.name for d in all_sets}
        doomed = st.selectbox("Dataset", list(names), format_func=names.get, key="delete_pick")
        if st.button("Delete", key="delete_dataset", type="secondary"):
            ui.guarded(lambda: store.delete_dataset(con, doomed))
            st.rerun()
