"""Load data: the demo plant in one click, uploads, and the workspace's datasets."""

import streamlit as st

from core import store
from core.ingest import NO_LABELS, datasets_table, ingest_upload, label_choice, uploaded_copy
from core.learn import append_batch, describe_batch
from core.synth import FAULT_KINDS, MAX_FAULTS_PER_ASSET, inject_into_dataset, load_demo
from pages import ui
from pages.data_twin import transplant_controls, twin_expander

LOADED = "data_loaded"  # (dataset name, warnings) shown after the rerun that follows a load
COPIED = "data_copied"  # what the test copy holds, shown after the rerun that follows it
APPENDED = "data_appended"  # what appending a batch did, shown after the rerun that follows it
UPLOADS = "data_uploads"  # {upload's file_id: dataset id} of the uploads this session loaded


def load_upload(upload, name: str, label_text: str) -> None:
    """Load an upload once: a second click on "Load file" (a double click) names the dataset it
    already made instead of loading the same upload again as "name (2)"."""
    loaded = st.session_state.setdefault(UPLOADS, {})
    earlier = {d.id: d.name for d in ui.datasets(con)}.get(loaded.get(upload.file_id))
    if earlier is not None:
        st.info(
            f"{ui.plain(upload.name)} was already loaded as {ui.plain(earlier)}: nothing loaded "
            "again. To load the file once more, upload it again."
        )
        return

    def ingest():
        result = ingest_upload(
            con, upload.getvalue(), upload.name, name or None, label_choice(label_text)
        )
        # noted before any Streamlit call: a click during the load stops this run at the next one
        loaded[upload.file_id] = result.dataset.id
        return result

    with st.status(f"Loading {ui.plain(upload.name)}…") as status:
        result = ui.guarded(ingest)
        if result is None:
            status.update(
                label=f"{ui.plain(upload.name)} was not loaded", state="error", expanded=True
            )
        else:
            ui.set_active_dataset(result.dataset.id)
            status.update(label=f"Loaded {ui.plain(result.dataset.name)}", state="complete")
            st.session_state[LOADED] = (result.dataset.name, result.warnings)
            st.rerun()  # the sidebar and the empty-workspace note must see the new dataset


def dataset_picker(where, names: dict[int, str], current, key: str) -> int:
    """A Dataset picker that starts on the sidebar's dataset and follows it: keyed by it, as a
    keyed picker kept its first choice after a switch (a batch went to the wrong dataset)."""
    ids = list(names)
    return where.selectbox(
        "Dataset",
        ids,
        index=ids.index(current.id) if current and current.id in names else 0,
        format_func=names.get,
        key=f"{key}_{current.id if current else 0}",
    )


con = ui.workspace()
current = ui.sidebar(con)
st.title("Load data")

all_sets = ui.datasets(con)
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
                status.update(label=f"Loaded {ui.plain(info.name)}", state="complete")
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
    label_text = st.text_input(
        "Label columns (optional)",
        key="upload_labels",
        placeholder="automatic",
        help="Columns holding the answer as 0/1 (1 = anomalous) are kept as the dataset's "
        "ground truth to grade runs against, never as sensors. Left empty, columns named like "
        "anomaly, label, fault or changepoint that hold only 0 and 1 are taken. Name them "
        f"comma-separated, or type '{NO_LABELS}' to load every column as a sensor.",
    )
    if upload is not None and st.button("Load file", icon=":material/upload:"):
        load_upload(upload, name, label_text)
    if loaded := st.session_state.pop(LOADED, None):
        st.success(f"Loaded {ui.plain(loaded[0])}.")
        for warning in loaded[1]:
            st.warning(ui.plain(warning))

all_sets = ui.datasets(con)
if all_sets:
    st.subheader("Datasets in this workspace")
    st.dataframe(
        datasets_table(all_sets),
        hide_index=True,
        width="stretch",
        column_config={"name": st.column_config.TextColumn(width="medium")},
    )
    names = {d.id: d.name for d in all_sets}
    with st.expander("Test copy with injected faults", icon=":material/science:"):
        st.caption(
            "No labels yet? Vigil copies a dataset and injects realistic faults (spikes, drifts, "
            "level shifts, stuck sensors, noise bursts, broken couplings) with their ground "
            "truth, away from machine stops and the analysts' labels. Run detectors on the copy "
            "(**Detect**) to see which faults they find and how many false alarms they raise. "
            "The source dataset is not changed."
        )
        c = st.columns([3, 1, 1], vertical_alignment="bottom")
        source = dataset_picker(c[0], names, current, "inject_source")
        n_faults = c[1].number_input("Faults per asset", 1, MAX_FAULTS_PER_ASSET, 6, key="inject_n")
        seed = c[2].number_input("Seed", 0, 10_000, 0, key="inject_seed")
        kinds = st.multiselect("Fault kinds", FAULT_KINDS, FAULT_KINDS, key="inject_kinds")
        if st.button("Make the test copy", key="inject_go", icon=":material/science:"):
            with st.status("Injecting faults…") as status:
                copy = ui.guarded(
                    lambda: inject_into_dataset(con, source, int(n_faults), kinds, int(seed))
                )
                if copy is None:
                    status.update(label="No copy made", state="error", expanded=True)
                else:
                    ui.set_active_dataset(copy.id)
                    st.session_state[COPIED] = f"Made {copy.name!r}. {copy.quality.notes[-1]}"
                    st.rerun()
        if copied := st.session_state.pop(COPIED, None):
            st.success(
                f"{copied} It is now the active dataset: run a detector on it on **Detect** to "
                "see which injected faults it finds."
            )
        transplant_controls(con, source, int(seed))
    twin_expander(con, names, current.id if current else None)
    with st.expander("Append newer readings", icon=":material/playlist_add:"):
        st.caption(
            "Tomorrow's file for a dataset you already review: the same sensors and assets, "
            "readings after the last ones. Vigil scores it with the model in use (the active "
            "version, else the latest run), adds its events to the review queue on **Triage** "
            "and says whether it drifted from what the model learned. A bad file changes nothing."
        )
        target = dataset_picker(st, names, current, "append_target")
        batch = st.file_uploader(
            "Newer readings", type=["csv", "txt", "tsv", "parquet", "xlsx"], key="append_upload"
        )
        if batch is not None and st.button("Append and score", key="append_go"):
            with st.status(f"Appending {ui.plain(batch.name)}…", expanded=True) as status:
                bar = st.progress(0.0)

                def _append():
                    with uploaded_copy(batch.getvalue(), batch.name) as path:
                        return append_batch(con, target, path, batch.name, bar.progress)

                done = ui.guarded(_append)
                if done is None:
                    status.update(label="Nothing appended", state="error", expanded=True)
                else:
                    ui.set_active_dataset(target)
                    st.session_state[APPENDED] = describe_batch(done) + done.warnings
                    st.rerun()
        if appended := st.session_state.pop(APPENDED, None):
            st.success(ui.plain(appended[0]))
            for line in appended[1:]:
                st.warning(ui.plain(line))
    with st.expander("Delete a dataset", icon=":material/delete:"):
        doomed = dataset_picker(st, names, current, "delete_pick")
        with st.popover(f"Delete {ui.plain(names[doomed])}", icon=":material/delete:"):
            st.write(  # one click deleted at once: the button is one step away, as on Detect
                "Its readings, runs, explanations and model versions go too; its labels stay in "
                "their history. This cannot be undone."
            )
            if st.button("Delete", type="primary", key="delete_dataset") and ui.guarded(
                lambda: store.delete_dataset(con, doomed) or True
            ):
                st.rerun()
