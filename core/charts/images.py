"""Plotly figures as PNG images, for documents that cannot run plotly.js (the PDF report).

Kaleido (>= 1) draws each figure in a headless Chrome through choreographer; Vigil uses the
machine's Chromium (Debian's ``/usr/bin/chromium``, or ``$BROWSER_PATH``), never a downloaded
one. One browser draws all the figures of a document: starting it costs about 1.5 s, a figure
about 0.1 s. Plotly.js comes from the kaleido package and MathJax is off, so it works offline.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.graph_objects as go

from core.errors import ConfigError

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
Progress = Callable[[float, str], None]


def _browser_path() -> None:
    """Point kaleido at Debian's Chromium unless the user chose a browser with BROWSER_PATH."""
    if "BROWSER_PATH" not in os.environ and DEBIAN_CHROMIUM.exists():
        os.environ["BROWSER_PATH"] = str(DEBIAN_CHROMIUM)


async def _draw(
    figures: Sequence[go.Figure], width: int, scale: float, progress: Progress | None
) -> list[bytes]:
    import kaleido

    out: list[bytes] = []
    async with kaleido.Kaleido(n=1, mathjax=False) as browser:
        for i, fig in enumerate(figures):
            height = fig.layout.height or 400
            opts = {"format": "png", "width": width, "height": height, "scale": scale}
            out.append(await browser.calc_fig(fig, opts=opts))
            if progress is not None:
                progress((i + 1) / len(figures), f"Drew chart {i + 1} of {len(figures)}")
    return out


def png_images(
    figures: Sequence[go.Figure],
    width: int = 900,
    scale: float = 2.0,
    progress: Progress | None = None,
) -> list[bytes]:
    """Each figure as PNG bytes, ``width`` CSS pixels wide at its own layout height, drawn
    ``scale`` times denser (sharp when printed).

    Raises ConfigError when no Chromium can be started (the message says how to get one)."""
    if not figures:
        return []
    _browser_path()
    from kaleido.errors import BrowserFailedError, ChromeNotFoundError

    job = lambda: asyncio.run(_draw(figures, width, scale, progress))  # noqa: E731
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return job()
        with ThreadPoolExecutor(1) as pool:  # called from inside an event loop (a notebook)
            return pool.submit(job).result()
    except (ChromeNotFoundError, BrowserFailedError) as exc:
        browser = os.environ.get("BROWSER_PATH", "Chrome or Chromium")
        raise ConfigError(
            f"Charts as images need a Chromium browser and {browser} could not be started: "
            "install Debian's chromium (apt-get install chromium) or set BROWSER_PATH to a "
            f"Chrome ({type(exc).__name__})."
        ) from exc
