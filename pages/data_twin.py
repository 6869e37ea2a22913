"""Load data's synthetic data beyond textbook faults: transplanted confirmed events, and a
synthetic twin with its fidelity and privacy report."""

from __future__ import annotations

import duckdb
import streamlit as st

from core import store
from core.share.report import twin_note, twin_section
from core.synth import confirmed_kinds, transplant_confirmed
from core.synth.twin import twin_with_report
from pages import ui

TWINNED = "data_twinned"  # (twin name, report) shown after the rerun that follows it
TRANSPLANTED = "data_transplanted"  # what the transplant copy holds, shown after its rerun
_ANY = "any kind"


def transplant_controls(con: duckdb.DuckDBPyConnection, source: int, seed: int) -> None:
    """Transplant the source's confirmed events (of a kind) into a normal stretch of an asset."""
    st.markdown("**Or transplant real faults**: the shape of events the analysts confirmed.")
    info = store.get_dataset(con, source)
    c = st.columns([2, 2, 1], vertical_alignment="bottom")
    kinds = [_ANY, *confirmed_kinds(con, source)]
    kind = c[0].selectbox("Confirmed kind", kinds, key="transplant_kind")
    target = c[1].selectbox("Into asset", ["the event's own", *info.assets], key="transplant_to")
    if c[2].button("Transplant", key="transplant_go", icon=":material/healing:"):
        with st.status("Transplanting confirmed events…") as status:
            copy = ui.guarded(
                lambda: transplant_confirmed(
                    con,
                    source,
                    None if kind == _ANY else kind,
                    None if target == "the event's own" else target,
                    seed,
                )
            )
            if copy is None:
                status.update(label="No copy made", state="error", expanded=True)
            else:
                ui.set_active_dataset(copy.id)
                st.session_state[TRANSPLANTED] = f"Made {copy.name!r}. {copy.quality.notes[-1]}"
                st.rerun()
    if done := st.session_state.pop(TRANSPLANTED, None):
        st.success(f"{ui.plain(done)} Run a detector on it on **Detect** to grade it.")


def twin_expander(con: duckdb.DuckDBPyConnection, names: dict[int, str], current_id: int | None):
    """The expander: source, seed, whether to carry ground truth, the button and the report."""
    with st.expander("Synthetic twin", icon=":material/content_copy:"):
        st.caption(
            "A new dataset with the same sensors, assets, sampling, operating modes and machine "
            "stops, generated from a model of the source and sharing no real stretch of values: "
            "share it with a vendor, teach with it, grade detectors on it. It comes with a "
            "fidelity and privacy report."
        )
        c = st.columns([3, 1], vertical_alignment="bottom")
        ids = list(names)
        source = c[0].selectbox(
            "Dataset",
            ids,
            index=ids.index(current_id) if current_id in names else 0,
            format_func=names.get,
            key=f"twin_source_{current_id}",  # follows the sidebar's dataset
        )
        seed = c[1].number_input("Seed", 0, 10_000, 0, key="twin_seed")
        carry = st.checkbox("Carry the source's injected faults (ground truth)", key="twin_carry")
        if st.button("Make the twin", key="twin_go", icon=":material/content_copy:"):
            with st.status("Making the twin…") as status:
                bar = st.progress(0.0)
                made = ui.guarded(
                    lambda: twin_with_report(
                        con, source, int(seed), carry, lambda f, m: bar.progress(f, text=m)
                    )
                )
                if made is None:
                    status.update(label="No twin made", state="error", expanded=True)
                else:
                    ui.set_active_dataset(made[0].id)
                    st.session_state[TWINNED] = (made[0].name, made[1])
                    st.rerun()
        if twinned := st.session_state.get(TWINNED):
            _show(*twinned)


def _show(name: str, report) -> None:
    verdict = "passes every check" if report.passed else "fails at least one check"
    (st.success if report.passed else st.warning)(
        f"Made {ui.plain(name)} (now the active dataset): it {verdict} of its fidelity and "
        "privacy report."
    )
    st.dataframe(report.table(), hide_index=True, width="stretch")
    st.caption(twin_note(report))
    st.dataframe(report.sensors, hide_index=True, width="stretch")
    page = f"<!doctype html><meta charset='utf-8'><body>{twin_section(report, f'Synthetic twin {name}')}</body>"
    st.download_button(
        "Download the report (HTML)", page, file_name="twin_report.html", mime="text/html"
    )
