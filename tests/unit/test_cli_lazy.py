"""The command line loads lazily: `--help` imports no command module, each command only its
own, and an appliance-only command on a plain install says which extra it needs."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from appliance import cli
from appliance.errors import MissingExtra


def test_the_table_matches_what_each_module_registers() -> None:
    parser = cli.build_parser(full=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    shown = {c.dest: c.help for c in sub._choices_actions}
    assert shown == {name: help for name, (_, help) in cli.COMMANDS.items()}


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from appliance import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('appliance.') or "
        "m.split('.')[0] in ('cryptography', 'flask', 'cups', 'pysnmp', 'paho')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['appliance.cli', 'appliance.errors']"


def test_a_client_command_loads_only_its_module() -> None:
    code = (
        "import sys\n"
        "from appliance import cli\n"
        "cli.build_parser(['jobs'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('appliance.cli.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "appliance.cli.client" in out.stdout
    for other in ("intake", "broker", "site", "edge", "setup"):
        assert f"appliance.cli.{other}'" not in out.stdout


def test_an_appliance_command_without_the_extra_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError("No module named 'cups'", name="cups")

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    with pytest.raises(MissingExtra, match=r"meshprint\[appliance\] \(CUPS, SNMP, MQTT\)"):
        cli.load_group("intake")
    assert cli.main(["intake", "install"]) == 1
    assert "needs meshprint[appliance]" in capsys.readouterr().err


def test_another_missing_module_is_not_blamed_on_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError("No module named 'nothere'", name="nothere")

    monkeypatch.setattr(cli.importlib, "import_module", missing)
    with pytest.raises(ModuleNotFoundError):
        cli.load_group("client")
