"""Login turns on by itself when secrets configure it, and stays out of the way otherwise."""

from tests.apptest import open_app


def test_without_auth_secrets_the_app_opens_directly(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "w.duckdb"))
    at = open_app()
    assert not at.exception
    assert at.title[0].value == "Load data"
    assert "Sign in" not in [b.label for b in at.button]


def test_with_auth_secrets_anonymous_visitors_must_sign_in(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "w.duckdb"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "vigil",
        "client_secret": "secret",
        "server_metadata_url": "https://idp.invalid/.well-known/openid-configuration",
    }
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not any(t.value == "Load data" for t in at.title), "no page before signing in"
