"""The setup code: format, file mode, checking, and void once setup is done."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.errors import Gone
from appliance.site import setupcode


def test_code_is_three_groups_of_unambiguous_characters(tmp_path: Path) -> None:
    code = setupcode.ensure(tmp_path)
    groups = code.split("-")
    assert len(groups) == 3 and all(len(g) == 4 for g in groups)
    assert set(code.replace("-", "")) <= set(setupcode.ALPHABET)
    assert not set("0O1IL25S8B") & set(code)


def test_code_file_is_private_and_stable(tmp_path: Path) -> None:
    code = setupcode.ensure(tmp_path)
    mode = stat.S_IMODE((tmp_path / "setup-code").stat().st_mode)
    assert mode == 0o600
    assert setupcode.ensure(tmp_path) == code


def test_check_accepts_lower_case_and_spaces_only_for_the_right_code(tmp_path: Path) -> None:
    code = setupcode.ensure(tmp_path)
    assert setupcode.check(tmp_path, code.lower().replace("-", " "))
    assert not setupcode.check(tmp_path, "AAAA-AAAA-AAAA")
    assert not setupcode.check(tmp_path, "")


def test_void_after_setup(tmp_path: Path) -> None:
    code = setupcode.ensure(tmp_path)
    setupcode.void(tmp_path)
    assert not (tmp_path / "setup-code").exists()
    assert not setupcode.check(tmp_path, code)
    with pytest.raises(Gone):
        setupcode.ensure(tmp_path)


def test_command_prints_the_code(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "setup-code", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == (tmp_path / "setup-code").read_text().strip()
