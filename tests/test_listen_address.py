"""Without sign-in Vigil listens on this machine only, and the sidebar says who can reach it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from tests.browser import ROOT, free_port


def _outward_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/_stcore/health", timeout=2) as resp:
            return resp.read() == b"ok"
    except OSError:
        return False


def test_the_app_started_as_the_readme_says_is_reachable_from_this_machine_only(tmp_path):
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no network address other than loopback to try")
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    env = {**os.environ, "VIGIL_DB": str(tmp_path / "w.duckdb")}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.3)
        assert not _answers(outward, port), f"the app answers on {outward}, not only on loopback"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _notice(address: str, signed_in: bool) -> None:
    from pages.ui import access_notice

    access_notice(address, signed_in)


@pytest.mark.parametrize(
    ("address", "signed_in", "caption", "warning"),
    [
        ("127.0.0.1", False, "this computer only", None),
        ("0.0.0.0", False, None, "anyone who can open this page can label under any name"),
        ("", False, None, "all interfaces"),
        ("0.0.0.0", True, None, None),
    ],
)
def test_the_sidebar_says_who_can_reach_the_app(address, signed_in, caption, warning):
    at = AppTest.from_function(_notice, args=(address, signed_in)).run()
    assert not at.exception
    texts = [w.value for w in at.warning]
    assert any(warning in t for t in texts) if warning else texts == []
    if caption:
        assert any(caption in c.value for c in at.caption)
    else:
        assert not at.caption


def test_the_app_shows_its_reach_in_the_sidebar(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "w.duckdb"))
    at = open_app("pages/data.py")
    assert not at.exception
    shown = [c.value for c in at.sidebar.caption] + [w.value for w in at.sidebar.warning]
    assert any("signs in" in text for text in shown), shown
