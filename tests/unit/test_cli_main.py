"""appliance.cli.main: how the command line ends when things go wrong around it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import pytest

from appliance import cli


def test_a_reader_that_stops_early_gets_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`meshprint jobs | head`: the pipe closes before the listing is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (head) has gone
    piped = os.fdopen(write_end, "w")

    def listing(args: argparse.Namespace) -> None:
        print("JOB " * 10_000)

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=listing)
    monkeypatch.setattr(cli, "build_parser", lambda *a, **k: parser)
    monkeypatch.setattr(sys, "stdout", piped)
    assert cli.main([]) == 1
    assert capsys.readouterr().err == ""
    piped.close()  # flushing again goes nowhere now: no second error


def test_a_meshprint_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance.errors import NotFound

    def fail(args: Any) -> None:
        raise NotFound("you have no job j1")

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=fail)
    monkeypatch.setattr(cli, "build_parser", lambda *a, **k: parser)
    assert cli.main([]) == 1
    assert capsys.readouterr().err == "meshprint: you have no job j1\n"
