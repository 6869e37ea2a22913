"""Plotly figures built from core's typed results; pages only call `st.plotly_chart`."""
