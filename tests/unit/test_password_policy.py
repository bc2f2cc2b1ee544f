"""appliance.crypto.password_policy: length, the bundled common passwords, the user name;
and every place a password is set applies it (admin, the web UI's forms, the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.crypto import password_policy
from appliance.crypto.password_policy import MIN_LENGTH, check_password, common_passwords
from appliance.datadir import DataDir
from appliance.errors import BadRequest
from appliance.site import admin
from appliance.site.enroll import create_site
from appliance.site.state import SiteState, open_site
from tests.unit.conftest import new_controller


def test_the_bundled_list_is_large_lower_case_and_has_the_usual_suspects() -> None:
    words = common_passwords()
    assert 20_000 <= len(words) <= 30_000
    assert all(w == w.lower() and w for w in words)
    for usual in ("password", "123456", "qwertyuiop", "iloveyou", "1234567890"):
        assert usual in words
    licence = Path(password_policy.__file__).with_name("common_passwords.LICENSE").read_text()
    assert "MIT License" in licence and "zxcvbn" in licence


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "at least 10"),
        ("password", "at least 10"),
        ("9chars-ok", "at least 10"),
        ("x" * 1025, "at most 1024"),
        ("qwertyuiop", "most common"),
        ("QWERTYuiop", "most common"),
        ("1234567890", "most common"),
        ("password12", "most common"),
        ("Sunshine2024!", "digits or symbols added"),
        ("iloveyou12345", "digits or symbols added"),
        ("Dragon_#_1234", "digits or symbols added"),
        ("maria", "at least 10"),
        ("MariaMariaMaria", "user name"),
        ("my-maria-garden-7", "user name"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        check_password(password, "maria")


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "saffron-tide-44", "x" * MIN_LENGTH, "Tr0ub4dor&3-xk", "é" * 12],
)
def test_reasonable_passwords_are_accepted(password: str) -> None:
    check_password(password, "maria")


def test_the_list_is_read_at_the_first_check_not_at_import() -> None:
    code = (
        "import appliance.crypto.password_policy as p, appliance.site.admin, webui;"
        "assert p.common_passwords.cache_info().currsize == 0;"
        "p.check_password('correct horse battery');"
        "assert p.common_passwords.cache_info().currsize == 1; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.fixture
def site(tmp_path: Path) -> SiteState:
    data = DataDir(tmp_path / "ctl")
    return new_controller(data.root)[1]


@pytest.mark.parametrize("password", ["password", "password1234", "maria-2024-x"])
def test_admin_refuses_weak_passwords_and_changes_nothing(site: SiteState, password: str) -> None:
    version = site.directory().version
    with pytest.raises(BadRequest):
        admin.add_user(site, "maria", password)
    assert site.directory().version == version and site.directory().users == []
    admin.add_user(site, "maria", "saffron-tide-44")
    key = site.directory().user("maria")
    with pytest.raises(BadRequest):
        admin.reset_password(site, "maria", password)
    assert site.directory().user("maria") == key


def test_the_cli_refuses_a_common_password_with_the_reason(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "ctl")
    create_site(data, "Office")
    secret = tmp_path / "pw"
    secret.write_text("Password2024!\n")
    command = [sys.executable, "-m", "appliance.cli", "user", "add", "maria"]
    done = subprocess.run(
        [*command, "--data", str(data.root), "--password-file", str(secret)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "digits or symbols added" in done.stderr, done
    assert open_site(data)[1].directory().users == []
