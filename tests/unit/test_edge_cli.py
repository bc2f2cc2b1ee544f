"""`meshprint edge`: the hand-off wait and the refusals, without a mesh (the whole path runs
in tests/integration/test_edge_install.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance import cli
from appliance.cli import edge
from appliance.datadir import DataDir
from appliance.mesh import handoff


def status(held: int, under: int) -> tuple[str, dict[str, Any]]:
    return "n1", {"jobs": {"held": held, "under_replicated": under}}


def test_the_wait_ends_when_every_job_is_on_three_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([status(4, 2), None, status(4, 1), status(4, 0)])
    monkeypatch.setattr(handoff, "mesh_status", lambda data: next(answers))
    seen: list[handoff.Progress] = []
    progress = handoff.wait_handed_off(DataDir("/nowhere"), 60, 0, seen.append)
    assert progress.done and progress.held == 4
    assert [p.under_replicated for p in seen] == [2, 0, 1, 0]
    assert seen[1].asked is None and not seen[1].done  # no member answered: not done


def test_the_wait_gives_up_at_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff, "mesh_status", lambda data: status(3, 1))
    progress = handoff.wait_handed_off(DataDir("/nowhere"), 0, 0)
    assert not progress.done and progress.under_replicated == 1


def test_uninstall_that_times_out_removes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "edge"
    data.mkdir()
    (data / "node.json").write_text("{}")
    removed: list[str] = []
    monkeypatch.setattr(edge, "_require_admin", lambda platform: None)
    monkeypatch.setattr(edge.bootservice, "run", lambda argv: removed.append(argv[0]))  # type: ignore[arg-type,func-returns-value]
    monkeypatch.setattr(edge.bootservice.BootService, "stop", lambda self: None)
    monkeypatch.setattr(
        edge.bootservice.BootService, "remove", lambda self: removed.append("service")
    )
    monkeypatch.setattr(handoff, "held_here", lambda d: 2)
    monkeypatch.setattr(handoff, "mesh_status", lambda d: status(2, 2))
    argv = ["edge", "uninstall", "--data", str(data), "--root", str(tmp_path), "--timeout", "0"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "2 job(s) are still on fewer than three copies; nothing was removed" in err
    assert data.exists() and removed == []


def test_install_refuses_a_directory_that_is_already_a_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "node.json").write_text("{}")
    monkeypatch.setattr(edge, "_require_admin", lambda platform: None)
    assert cli.main(["edge", "install", "TOKEN", "--data", str(tmp_path)]) == 1
    assert "is already a node of a site" in capsys.readouterr().err


def test_install_needs_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(edge.bootservice, "platform_name", lambda: "linux")
    monkeypatch.setattr(edge.os, "geteuid", lambda: 1000)
    assert cli.main(["edge", "install", "TOKEN"]) == 1
    assert "run this as root" in capsys.readouterr().err


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_the_data_directory_is_given_to_the_service_or_the_install_stops(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str
) -> None:
    import subprocess

    calls: list[list[str]] = []

    def runner(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 1, "", "denied")

    monkeypatch.setattr(edge.bootservice, "run", runner)
    with pytest.raises(edge.ConfigError):
        edge._ensure_user(platform, tmp_path)
    tool = {"linux": "useradd", "windows": "icacls"}[platform]
    assert any(c[0] == tool for c in calls), calls
