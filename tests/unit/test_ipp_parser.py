"""IPP decoding: real ippeveprinter responses (tests/data/ipp/*.hex), a hand-written one,
and malformed input, which must raise IppParseError — never IndexError or struct.error."""

from __future__ import annotations

import contextlib
import struct
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.printers.ipp.enums import DelimiterTag, JobState, PrinterState, Status, ValueTag
from appliance.printers.ipp.exceptions import IppParseError
from appliance.printers.ipp.message import IntRange, OutOfBand, Resolution
from appliance.printers.ipp.models import JobStatus, PrinterInfo
from appliance.printers.ipp.parser import parse
from appliance.printers.ipp.serializer import encode

DATA = Path(__file__).parent.parent / "data" / "ipp"
CAPTURES = sorted(p.name for p in DATA.glob("*.hex"))


def load(name: str) -> bytes:
    """A capture: '#' comment lines, then the response body in hex."""
    lines = (DATA / name).read_text().splitlines()
    return bytes.fromhex("".join(line for line in lines if not line.startswith("#")))


def hexbytes(text: str) -> bytes:
    """Hex with '#' comments to the end of each line."""
    return bytes.fromhex("".join(line.split("#")[0] for line in text.splitlines()))


# --- real captures


def test_captures_are_there() -> None:
    assert {
        "get-printer-attributes.hex",
        "print-job.hex",
        "get-job-attributes.hex",
        "print-job-unsupported-format.hex",
        "print-job-busy.hex",
    } <= set(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_re_encodes_to_the_same_bytes(name: str) -> None:
    data = load(name)
    assert encode(parse(data)) == data


def test_get_printer_attributes_capture() -> None:
    message = parse(load("get-printer-attributes.hex"))
    assert message.status == Status.SUCCESSFUL_OK
    assert message.version == (2, 0)
    assert message.request_id == 1
    info = PrinterInfo.from_attributes(message.printer_attributes())
    assert info.make_and_model == "Example Printer"
    assert info.name == "Capture Printer"
    assert info.state == PrinterState.IDLE
    assert info.state_reasons == []
    assert info.accepting_jobs
    assert {"application/pdf", "text/plain", "image/pwg-raster"} <= set(info.document_formats)
    assert info.sides_supported == ["one-sided", "two-sided-long-edge", "two-sided-short-edge"]
    assert info.copies_supported == IntRange(1, 999)
    assert 2 in info.copies_supported
    assert not info.color_supported
    assert info.color_modes == ["monochrome"]
    assert [u.split(":")[0] for u in info.uris] == ["ipp", "ipps"]
    assert info.ipp_versions == ["1.1", "2.0"]
    assert 0x0002 in info.operations  # Print-Job

    attrs = info.attributes
    assert attrs["printer-geo-location"].values == [OutOfBand.UNKNOWN]
    assert attrs["printer-geo-location"].tag == ValueTag.UNKNOWN
    assert attrs["printer-resolution-default"].value == Resolution(600, 600, 3)
    assert isinstance(attrs["printer-current-time"].value, datetime)
    assert attrs["printer-current-time"].value.tzinfo is not None
    assert all(isinstance(v, bytes) for v in attrs["printer-input-tray"].values)
    assert attrs["orientation-requested-supported"].tag == ValueTag.ENUM
    assert attrs["orientation-requested-supported"].values == [3, 4, 5, 6]

    # 1setOf collection, with a collection inside each member
    database = attrs["media-col-database"].values
    assert len(database) == 5
    first = database[0]
    assert isinstance(first, dict)
    assert first["media-key"].value == "na_letter_8.5x11in"
    size = first["media-size"].value
    assert isinstance(size, dict)
    assert (size["x-dimension"].value, size["y-dimension"].value) == (21590, 27940)
    last = database[4]
    assert isinstance(last, dict)
    assert last["media-source"].value == "by-pass-tray"


def test_print_job_capture() -> None:
    message = parse(load("print-job.hex"))
    assert message.ok
    assert message.first("job-id", DelimiterTag.JOB_ATTRIBUTES) == 1
    job = JobStatus.from_attributes(message.job_attributes())
    assert job.job_id == 1
    assert job.state in (JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED)


def test_get_job_attributes_capture() -> None:
    job = JobStatus.from_attributes(parse(load("get-job-attributes.hex")).job_attributes())
    assert job.job_id == 1
    assert job.state == JobState.COMPLETED and job.finished
    assert job.state_reasons == ["job-completed-successfully"]
    assert job.copies == 2
    assert job.sides == "two-sided-long-edge"
    assert job.print_color_mode == "monochrome"
    assert job.document_format == "text/plain"
    assert job.name == "capture"


def test_unsupported_format_capture() -> None:
    message = parse(load("print-job-unsupported-format.hex"))
    assert message.status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    assert not message.ok
    assert message.status_message == "Unsupported document-format mimeMediaType value."
    assert message.unsupported_names == ["document-format"]
    assert message.first("document-format", DelimiterTag.UNSUPPORTED_ATTRIBUTES) == (
        "application/postscript"
    )


def test_busy_capture() -> None:
    message = parse(load("print-job-busy.hex"))
    assert message.status == Status.SERVER_ERROR_BUSY
    assert message.status_message == "Currently printing another job."


# --- a hand-written response

STOPPED_JOB = """
02 00 0000 0000002a                 # IPP 2.0, successful-ok, request-id 42
01                                  # operation-attributes-tag
47 0012 617474726962757465732d63686172736574  0005 7574662d38        # attributes-charset utf-8
48 001b 617474726962757465732d6e61747572616c2d6c616e6775616765 0002 656e
02                                  # job-attributes-tag
21 0006 6a6f622d6964 0004 00000007  # job-id 7
23 0009 6a6f622d7374617465 0004 00000006                      # job-state processing-stopped
44 0011 6a6f622d73746174652d726561736f6e73 000f 7072696e7465722d73746f70706564
                                    # job-state-reasons printer-stopped
44 0000 0009 6a6f622d7072696e74   # … and job-print (1setOf)
35 0011 6a6f622d73746174652d6d657373616765 0010 0002 6672 000a 426f75726f7567652021
                                    # job-state-message (textWithLanguage fr) "Bourouge !"
13 0005 6d65646961 0000             # media: no-value
34 0009 6d656469612d636f6c 0000     # media-col = {
4a 0000 000a 6d656469612d73697a65   #   media-size = {
34 0000 0000
4a 0000 000b 782d64696d656e73696f6e 21 0000 0004 00005208   # x-dimension 21000
4a 0000 000b 792d64696d656e73696f6e 21 0000 0004 00007404   # y-dimension 29700
37 0000 0000                        #   }
4a 0000 000c 6d656469612d736f75726365 44 0000 0004 6d61696e  # media-source main
37 0000 0000                        # }
03                                  # end-of-attributes-tag
"""


def test_hand_written_response() -> None:
    message = parse(hexbytes(STOPPED_JOB))
    assert message.request_id == 42
    job = JobStatus.from_attributes(message.job_attributes())
    assert job.job_id == 7
    assert job.state == JobState.PROCESSING_STOPPED
    assert job.state_reasons == ["printer-stopped", "job-print"]
    assert job.state_message == "Bourouge !"
    attrs = message.job_attributes()
    assert attrs["job-state-message"].value.language == "fr"  # type: ignore[union-attr]
    assert attrs["media"].values == [OutOfBand.NO_VALUE]
    media_col = attrs["media-col"].value
    assert isinstance(media_col, dict)
    assert media_col["media-source"].value == "main"
    size = media_col["media-size"].value
    assert isinstance(size, dict)
    assert size["x-dimension"].value == 21000
    assert size["y-dimension"].value == 29700


# --- malformed input

HEADER = "0200 0000 00000001"
CHARSET = "47 0012 617474726962757465732d63686172736574 0005 7574662d38"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "only 0 bytes"),
        ("0200000000000001", "only 8 bytes"),
        ("0900 0000 00000001 03", "version 9.0"),
        (f"{HEADER} 01 {CHARSET}", "no end-of-attributes tag"),
        (f"{HEADER} {CHARSET} 03", "before any group tag"),
        (f"{HEADER} 01 44 0000 0001 61 03", "follows no attribute"),
        (f"{HEADER} 01 47 0012 6174747269", "truncated"),
        (f"{HEADER} 01 47 0004 61626364 00ff 61 03", "truncated"),
        (f"{HEADER} 04 21 0001 61 0003 000001 03", "integer must be 4 bytes, not 3"),
        (f"{HEADER} 04 23 0001 61 0005 0000000001 03", "enum must be 4 bytes"),
        (f"{HEADER} 04 22 0001 61 0002 0001 03", "boolean must be 1 bytes"),
        (f"{HEADER} 04 33 0001 61 0007 00000001000000 03", "rangeOfInteger must be 8"),
        (f"{HEADER} 04 32 0001 61 0008 0000000100000001 03", "resolution must be 9"),
        (f"{HEADER} 04 31 0001 61 000a 07ea0101000000002b00 03", "dateTime must be 11"),
        (f"{HEADER} 04 35 0001 61 0004 0002 656e 03", "truncated"),
        (f"{HEADER} 04 35 0001 61 0007 0001 65 0001 61 ff 03", "stray bytes"),
        (f"{HEADER} 04 7f 0001 61 0004 00000001 03", "extension tag"),
        (f"{HEADER} 04 37 0000 0000 03", "outside a collection"),
        (f"{HEADER} 04 4a 0000 0001 61 03", "outside a collection"),
        (f"{HEADER} 04 34 0001 61 0000 03", "group tag 0x03 .* inside a collection"),
        (f"{HEADER} 04 34 0001 61 0000", "collection is not closed"),
        (f"{HEADER} 04 34 0001 61 0000 4a 0000 0001 62 37 0000 0000 03", "has no value"),
        (f"{HEADER} 04 34 0001 61 0000 21 0000 0004 00000001 37 0000 0000 03", "no memberAttrName"),
        (f"{HEADER} 04 34 0001 61 0000 44 0001 62 0001 63 37 0000 0000 03", "has a name"),
        (f"{HEADER} 04 34 0001 61 0000 4a 0000 0000 03", "empty memberAttrName"),
        (
            f"{HEADER} 04 34 0001 61 0000" + " 4a 0000 0001 62 34 0000 0000" * 20,
            "nested deeper than 16",
        ),
    ],
)
def test_malformed(body: str, error: str) -> None:
    with pytest.raises(IppParseError, match=error):
        parse(bytes.fromhex(body))


def test_parse_refuses_non_bytes() -> None:
    with pytest.raises(IppParseError, match="must be bytes"):
        parse("0200")  # type: ignore[arg-type]


def test_impossible_date_is_kept_raw() -> None:
    raw = bytes(11)  # year 0, month 0: some printers do send this
    data = bytes.fromhex(f"{HEADER} 04 31 0001 61 000b") + raw + b"\x03"
    assert parse(data).first("a") == raw


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    data = bytes.fromhex(f"{HEADER} 04 41 0001 61 0002 c328 03")
    assert parse(data).first("a") == "\ufffd("


@pytest.mark.parametrize("name", ["print-job.hex", "print-job-busy.hex", "get-job-attributes.hex"])
def test_every_truncation_of_a_small_capture_is_a_parse_error(name: str) -> None:
    data = load(name)
    for size in range(len(data)):
        with pytest.raises(IppParseError):
            parse(data[:size])


def test_truncations_of_the_printer_attributes_capture() -> None:
    data = load("get-printer-attributes.hex")
    sizes = [*range(0, len(data), 13), *range(len(data) - 64, len(data))]
    for size in sizes:
        with pytest.raises(IppParseError):
            parse(data[:size])


@given(st.binary(max_size=200))
def test_random_bytes_parse_or_raise_ipp_parse_error(data: bytes) -> None:
    with contextlib.suppress(IppParseError):
        parse(data)


@given(st.sampled_from(CAPTURES), st.data())
def test_corrupted_captures_parse_or_raise_ipp_parse_error(name: str, draw: st.DataObject) -> None:
    data = bytearray(load(name))
    for _ in range(draw.draw(st.integers(1, 4))):
        index = draw.draw(st.integers(0, len(data) - 1))
        data[index] = draw.draw(st.integers(0, 255))
    with contextlib.suppress(IppParseError):
        parse(bytes(data))


def test_header_only_fields() -> None:
    data = struct.pack(">BBHI", 1, 1, 0x0507, 99) + b"\x03"
    message = parse(data)
    assert (message.version, message.status, message.request_id) == ((1, 1), Status(0x0507), 99)
    assert message.groups == []
