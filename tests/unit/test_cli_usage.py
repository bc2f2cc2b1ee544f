"""`meshprint usage`: one row per user and printer from the node's usage records."""

from __future__ import annotations

import calendar
import os
from pathlib import Path

import pytest

from appliance import cli
from appliance.cli.common import KEY_FILE_ENV
from appliance.datadir import DataDir
from appliance.site import admin, authority
from appliance.site.authority import RecoveryKey
from appliance.site.state import SiteState, open_site
from appliance.store.db import Database
from appliance.store.usage import UsageLog, UsageRecord
from tests.unit.conftest import new_controller

DEC_1 = calendar.timegm((2026, 12, 1, 9, 0, 0))


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root, _, recovery_key = new_controller(tmp_path / "ctl")
    key_file = tmp_path / "recovery.key"
    key_file.write_text(recovery_key + "\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))  # the administrator's credential
    records = [
        ("alice", "front", 4, True, False, DEC_1),
        ("alice", "front", 6, False, True, DEC_1 + 3600),
        ("bob", "back", 3, True, False, DEC_1 + 86400 * 5),
    ]
    UsageLog(Database(root.db)).accept(
        [
            UsageRecord(f"j{i:024x}", f"rel-{i:08d}", user, printer, "n1", at, 1, duplex, color,
                        pages, pages, (pages + 1) // 2 if duplex else pages, "printer", "printed")
            for i, (user, printer, pages, color, duplex, at) in enumerate(records)
        ]
    )  # fmt: skip
    return root.root


def test_table_with_totals(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["usage", "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "USER", "PRINTER", "JOBS", "PAGES", "SHEETS", "COLOUR", "MONO", "2-SIDED", "1-SIDED"
    ]  # fmt: skip
    assert lines[1].split() == ["alice", "front", "2", "10", "7", "4", "6", "6", "4"]
    assert lines[2].split() == ["bob", "back", "1", "3", "3", "3", "0", "0", "3"]
    assert lines[3].split() == ["total", "3", "13", "10", "7", "6", "6", "7"]


def test_range_and_csv(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["usage", "--data", str(data), "--from", "2026-12-01", "--to", "2026-12-01", "--csv"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "user,printer,jobs,pages,sheets,color_pages,mono_pages,duplex_pages,simplex_pages",
        "alice,front,2,10,7,4,6,6,4",
    ]
    assert cli.main(["usage", "--data", str(data), "--from", "2027-01-01"]) == 0
    assert capsys.readouterr().out == "no printed jobs in this range\n"


def test_bad_dates_are_one_line(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["usage", "--data", str(data), "--from", "12/01/2026"]) == 1
    assert "is not a date: use YYYY-MM-DD" in capsys.readouterr().err


def new_site_unlocked(data: Path) -> SiteState:
    site = open_site(DataDir(data))[1]
    authority.unlock(
        DataDir(data), site, RecoveryKey(Path(os.environ[KEY_FILE_ENV]).read_text().strip())
    )
    return site


def test_quota_changes_need_an_administrator(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_FILE_ENV)
    assert cli.main(["quota", "set", "--data", str(data), "--pages", "200"]) == 1
    assert "give an administrator's credential" in capsys.readouterr().err
    assert cli.main(["quota", "show", "--data", str(data)]) == 0
    assert "pages per user per month: unlimited" in capsys.readouterr().out


def test_quota_set_top_up_and_show(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["quota", "show", "--data", str(data)]) == 0
    assert "pages per user per month: unlimited" in capsys.readouterr().out
    assert cli.main(["quota", "set", "--data", str(data), "--pages", "200"]) == 0
    capsys.readouterr()
    assert cli.main(["quota", "top-up", "alice", "--data", str(data), "--pages", "20"]) == 1
    assert "no user 'alice'" in capsys.readouterr().err  # this site has no users yet
    assert cli.main(["quota", "set", "--data", str(data), "--pages", "-3"]) == 1
    assert "whole number" in capsys.readouterr().err
    admin.add_user(new_site_unlocked(data), "alice", "saffron-tide-44")
    args = ["quota", "top-up", "alice", "--data", str(data), "--pages", "20", "--color-pages", "5"]
    assert cli.main(args) == 0
    assert "alice: +20 pages, +5 colour pages in " in capsys.readouterr().out
    assert cli.main(["quota", "show", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "pages per user per month: 200" in out and "per month: unlimited" in out
    assert "alice: +20 pages, +5 colour pages" in out
