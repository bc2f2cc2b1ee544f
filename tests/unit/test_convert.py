"""Which documents a RAW printer gets converted, the cupsfilter command, the memory-only
temporary directory, and the RAW receipt's page-counter fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadRequest
from appliance.printers import convert
from appliance.printers.delivery import PrintOptions
from appliance.printers.delivery.raw import RawReceipt
from appliance.printers.errors import PrinterError
from appliance.printers.registry import DEFAULT_PDL, new_printer

PDF = "application/pdf"
PLAIN = PrintOptions(document_format=PDF)


@pytest.mark.parametrize(
    ("pdl", "fmt", "options", "expected"),
    [
        ("pdf", PDF, PLAIN, False),
        ("pdf", PDF, PrintOptions(copies=2), True),
        ("pdf", PDF, PrintOptions(sides="two-sided-long-edge"), True),
        ("pdf", PDF, PrintOptions(color=False), True),
        ("postscript", PDF, PLAIN, True),
        ("postscript", "application/postscript", PrintOptions(copies=3), False),
        ("pcl", "application/vnd.hp-pcl", PLAIN, False),
        ("pcl", "image/urf", PLAIN, True),
    ],
)
def test_what_needs_conversion(pdl: str, fmt: str, options: PrintOptions, expected: bool) -> None:
    assert convert.needs_conversion(pdl, fmt, options) is expected


def test_filter_command_writes_the_options_into_the_document() -> None:
    options = PrintOptions(copies=2, sides="two-sided-short-edge", color=False)
    command = convert.filter_command("pcl", PDF, options)
    assert command[-1] == "-" and command[3:5] == ["-n", "2"]
    assert "sides=two-sided-short-edge" in command and "Duplex=DuplexTumble" in command
    assert "print-color-mode=monochrome" in command
    assert any(part.endswith("pxlmono.ppd") for part in command)
    assert "application/vnd.cups-postscript" in convert.filter_command("postscript", PDF, PLAIN)


def test_no_tmpfs_means_no_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "MEMORY_DIRS", ("/nonexistent-tmpfs",))
    with pytest.raises(PrinterError, match="not converted on disk"):
        convert.memory_tmp()


def test_memory_tmp_is_a_tmpfs() -> None:
    found = convert.memory_tmp()
    mounts = Path("/proc/self/mounts").read_text().split("\n")
    assert any(line.split()[1:3] == [found, "tmpfs"] for line in mounts if line)


def test_unknown_language_is_refused() -> None:
    with pytest.raises(PrinterError, match="unknown printer language"):
        convert.Conversion(iter([b""]), PDF, "escp", PLAIN)


def test_receipt_keeps_the_page_counter_fields() -> None:
    receipt = RawReceipt("h", 9100, 10, 1.0, 2.0, True, pages_before=12345, pages=3)
    assert RawReceipt.parse(str(receipt)) == receipt
    old = RawReceipt.parse("raw host=h port=9100 bytes=1 started=1 finished=2 closed=acked")
    assert old.pages_before is None and old.pages is None


def test_printer_language_belongs_to_raw_printers() -> None:
    assert new_printer("r", "socket://10.0.0.5").pdl == DEFAULT_PDL
    assert new_printer("r", "socket://10.0.0.5", pdl="pcl").pdl == "pcl"
    with pytest.raises(BadRequest, match="RAW printer speaks one of"):
        new_printer("r", "socket://10.0.0.5", pdl="escp")
    with pytest.raises(BadRequest, match="socket:// \\(RAW\\) printers only"):
        new_printer("i", "ipp://10.0.0.5/ipp/print", pdl="pcl")
    assert new_printer("i", "ipp://10.0.0.5/ipp/print").pdl is None
