"""Vigil: routing only — page config, workspace choice, session defaults and navigation."""

import argparse
import os
import sys

import streamlit as st

from pages import ui


def _workspace_from_argv() -> None:
    """`streamlit run app.py -- --db PATH` chooses the workspace file (else $VIGIL_DB, data/)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:])
    if known.db:
        os.environ["VIGIL_DB"] = known.db


_workspace_from_argv()
st.set_page_config(page_title="Vigil", page_icon=":material/monitor_heart:", layout="wide")

PAGES = {
    "Data": [
        st.Page("pages/data.py", title="Load data", icon=":material/upload_file:", default=True),
        st.Page("pages/explore.py", title="Explore", icon=":material/insights:"),
    ],
    "Analyse": [
        st.Page("pages/detect.py", title="Detect", icon=":material/radar:"),
        st.Page("pages/triage.py", title="Triage", icon=":material/fact_check:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/psychology:"),
        st.Page("pages/learn.py", title="Learn", icon=":material/model_training:"),
    ],
    "Share": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:"),
    ],
}

ui.login_gate()
ui.run_page(st.navigation(PAGES))
