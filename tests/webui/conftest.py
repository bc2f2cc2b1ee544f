"""Fixtures for the web UI's Flask test-client tests: a fresh data directory, the app,
a client speaking HTTPS (the session cookie is Secure), and helpers that fill forms with
the page's CSRF token."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.site import setupcode
from webui import create_app

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN = ("admin", "lantern-mosaic-1")


class Browser:
    """A test client that keeps cookies and sends each form with the page's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = response.mimetype == "text/html" and CSRF_RE.search(response.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, page: str | None = None, **kwargs: Any
    ) -> Any:
        """POST a form after loading `page` (default: `path`) for its CSRF token, as a
        browser would."""
        self.get(page or path)
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.client.post(path, data=form, **kwargs)


def https_client(app: Flask) -> FlaskClient:
    """A test client whose requests arrive over HTTPS (so Secure cookies are sent)."""
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    return client


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app(data: Path) -> Flask:
    return create_app({"MESHPRINT_DATA": str(data), "TESTING": False, "SECRET_KEY": "t" * 32})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return https_client(app)


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def code(data: Path) -> str:
    return setupcode.ensure(data)


def claim(browser: Browser, code: str) -> None:
    browser.get("/setup/code")
    response = browser.post("/setup/code", {"code": code})
    assert response.status_code == 302, response.get_data(as_text=True)


def make_admin(browser: Browser) -> None:
    response = browser.post(
        "/setup/admin", {"name": ADMIN[0], "password": ADMIN[1], "confirm": ADMIN[1]}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def make_site(browser: Browser, name: str = "Test office") -> str:
    """Create the site in the wizard; the recovery key it shows once."""
    response = browser.post("/setup/site", {"site_name": name, "retention": "4h"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    found = re.search(r'id="recovery-key">([A-Z2-7-]+)<', page)
    assert found, page
    return found.group(1)


@pytest.fixture
def admin_browser(browser: Browser, code: str) -> Iterator[Browser]:
    """Signed in as the administrator, with a site created (the wizard not finished)."""
    claim(browser, code)
    make_admin(browser)
    make_site(browser)
    yield browser


def text(response: Any) -> str:
    """The page as a person reads it (HTML entities decoded)."""
    return html.unescape(response.get_data(as_text=True))
