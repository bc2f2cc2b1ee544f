"""Security of every page: headers, cookies, CSRF, rate limits, no account enumeration,
expiring sessions, safe redirects and friendly error pages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from flask import Flask

from tests.webui.conftest import ADMIN, Browser, https_client, text
from webui import create_app


def test_security_headers_and_cookie_flags(admin_browser: Browser) -> None:
    response = admin_browser.get("/admin/")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "max-age" in response.headers["Strict-Transport-Security"]
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_no_inline_script_in_any_page(admin_browser: Browser) -> None:
    for path in ("/admin/", "/admin/users", "/admin/printers", "/admin/nodes", "/admin/settings"):
        page = text(admin_browser.get(path))
        assert "<script>" not in page and " style=" not in page and "onclick" not in page


def test_form_without_csrf_token_is_refused_and_changes_nothing(admin_browser: Browser) -> None:
    response = admin_browser.client.post(
        "/admin/users", data={"action": "add", "name": "eve", "password": "x" * 10}
    )
    assert response.status_code == 400
    assert "did not come from this page" in text(response)
    assert "eve" not in text(admin_browser.get("/admin/users"))


def test_wrong_csrf_token_is_refused(admin_browser: Browser) -> None:
    admin_browser.get("/admin/users")
    response = admin_browser.client.post(
        "/admin/users", data={"csrf_token": "forged", "action": "add", "name": "eve"}
    )
    assert response.status_code == 400


def test_login_gives_one_message_for_unknown_name_and_wrong_password(
    admin_browser: Browser, app: Flask
) -> None:
    browser = Browser(https_client(app))
    unknown = browser.post("/login", {"name": "nobody", "password": "whatever-1"})
    wrong = browser.post("/login", {"name": ADMIN[0], "password": "whatever-1"})
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong name or password." in text(unknown) and "Wrong name or password." in text(wrong)


def test_login_is_rate_limited_with_a_clear_message(admin_browser: Browser, app: Flask) -> None:
    browser = Browser(https_client(app))
    for _ in range(5):
        assert (
            browser.post("/login", {"name": ADMIN[0], "password": "bad-guess"}).status_code == 401
        )
    limited = browser.post("/login", {"name": ADMIN[0], "password": ADMIN[1]})
    assert limited.status_code == 429
    assert "Too many wrong attempts" in text(limited) and "minutes" in text(limited)


def test_login_then_logout(admin_browser: Browser, app: Flask) -> None:
    browser = Browser(https_client(app))
    assert browser.get("/admin/").status_code == 302
    response = browser.post("/login", {"name": ADMIN[0], "password": ADMIN[1], "next": "/admin/"})
    assert response.status_code == 302 and response.location == "/admin/"
    assert browser.get("/admin/").status_code == 200
    browser.post("/logout", page="/admin/")
    assert browser.get("/admin/").status_code == 302


def test_login_never_redirects_off_site(admin_browser: Browser, app: Flask) -> None:
    browser = Browser(https_client(app))
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = browser.post("/login", {"name": ADMIN[0], "password": ADMIN[1], "next": target})
        assert response.location == "/admin/"


def test_idle_session_expires(admin_browser: Browser, app: Flask) -> None:
    assert admin_browser.get("/admin/").status_code == 200
    app.config["SESSION_IDLE"] = -1
    response = admin_browser.get("/admin/")
    assert response.status_code == 302 and "/login" in response.location


def test_error_pages_are_friendly(app: Flask, client: object) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    browser = Browser(https_client(app))
    missing = browser.get("/no/such/page")
    assert missing.status_code == 404 and "Page not found" in text(missing)
    failed = browser.get("/boom")
    assert failed.status_code == 500
    assert "secret internals" not in text(failed) and "Traceback" not in text(failed)
    assert "went wrong" in text(failed)


def test_wsgi_entry_point_reads_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPRINT_DATA", str(tmp_path / "data"))
    import webui.wsgi

    module = importlib.reload(webui.wsgi)
    assert module.app.config["MESHPRINT_DATA"] == str(tmp_path / "data")
    assert (tmp_path / "data" / "webui-secret").stat().st_mode & 0o077 == 0


def test_release_mode_serves_only_the_release_page(tmp_path: Path) -> None:
    app = create_app({"MESHPRINT_DATA": str(tmp_path)}, mode="release")
    client = https_client(app)
    assert client.get("/setup/").status_code == 404
    assert client.get("/admin/").status_code == 404
    assert client.get("/").location == "/release/"


def test_workers_starting_together_agree_on_one_whole_secret(tmp_path: Path) -> None:
    """First boot: gunicorn's workers create the app at the same moment. Each must end up
    with the same full-length key (one once read an empty file and served 500s)."""
    import threading

    from webui import _secret_key

    data = str(tmp_path / "data")
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        keys.append(_secret_key(data))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["webui-secret"]
