"""What the printer says about itself: the printer attributes AirPrint, IPP Everywhere
(PWG 5100.14) and Mopria clients read, with real margins (4.23 mm, what an office laser
printer prints to) on every size. The document formats are those the delivery path
converts for any printer (`printers/convert.py`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.printers.ipp import Attribute, IntRange, OutOfBand, Resolution, ValueTag
from appliance.printers.ipp.serializer import attr
from appliance.printoptions import COPIES_MAX, MEDIA, SIDES

FORMATS = ("application/pdf", "image/urf", "image/pwg-raster", "image/jpeg")
COMPRESSIONS = ("gzip", "deflate")
FORMAT_DEFAULT = "application/octet-stream"  # sniffed at intake
MARGIN = 423  # hundredths of a millimetre
MEDIA_READY = ("iso_a4_210x297mm", "na_letter_8.5x11in")
MEDIA_DEFAULT = "iso_a4_210x297mm"
OPERATIONS = (
    0x0002,
    0x0004,
    0x0005,
    0x0006,
    0x0008,
    0x0009,
    0x000A,
    0x000B,
    0x0039,
    0x003B,
    0x003C,
)
URF = ("V1.4", "CP1", "DM1", "IS1", "MT1", "PQ3-4-5", "RS300-600", "SRGB24", "W8")
JOB_TEMPLATE = (
    "copies",
    "media",
    "media-col",
    "orientation-requested",
    "print-color-mode",
    "print-quality",
    "printer-resolution",
    "sides",
    "output-bin",
    "multiple-document-handling",
)
BOOT = time.time()
BOOT_DATE = datetime.fromtimestamp(BOOT, UTC)


@dataclass(frozen=True)
class Identity:
    """Who the printer is: its URIs and names (from the node and the request's Host)."""

    uris: tuple[str, ...]  # ipps first
    uuid: str
    name: str
    location: str
    more_info: str  # the release page
    icon: str
    authentication: str = "basic"  # "none" on a personal printer URL (its secret is the key)


def printer_uuid(site_id: str, node_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'meshprint:{site_id}:{node_id}')}"


def _media_col(name: str, ready: bool = False) -> dict[str, Any]:
    width, height = MEDIA[name]
    col: dict[str, Any] = {
        "media-size": {"x-dimension": width, "y-dimension": height},
        "media-top-margin": MARGIN,
        "media-bottom-margin": MARGIN,
        "media-left-margin": MARGIN,
        "media-right-margin": MARGIN,
        "media-type": "stationery",
    }
    if ready:
        col["media-source"] = "auto"
    return col


def _keywords(name: str, values: object) -> Attribute:
    return attr(name, values, ValueTag.KEYWORD)


def printer_attributes(me: Identity, jobs_queued: int) -> list[Attribute]:
    """Every printer attribute, in the order a client reads them."""
    now = int(time.time() - BOOT) + 1
    uri_count = len(me.uris)
    text = ValueTag.TEXT_WITHOUT_LANGUAGE
    name = ValueTag.NAME_WITHOUT_LANGUAGE
    return [
        attr("charset-configured", "utf-8", ValueTag.CHARSET),
        attr("charset-supported", "utf-8", ValueTag.CHARSET),
        attr("color-supported", True),
        _keywords("compression-supported", ["none", *COMPRESSIONS]),
        attr("copies-default", 1),
        attr("copies-supported", IntRange(1, COPIES_MAX)),
        attr("document-format-default", FORMAT_DEFAULT, ValueTag.MIME_MEDIA_TYPE),
        attr("document-format-supported", [*FORMATS, FORMAT_DEFAULT], ValueTag.MIME_MEDIA_TYPE),
        attr("finishings-default", 3, ValueTag.ENUM),
        attr("finishings-supported", 3, ValueTag.ENUM),
        attr("generated-natural-language-supported", "en", ValueTag.NATURAL_LANGUAGE),
        _keywords("identify-actions-default", "display"),
        _keywords("identify-actions-supported", "display"),
        _keywords("ipp-features-supported", "ipp-everywhere"),
        _keywords("ipp-versions-supported", ["1.1", "2.0"]),
        _keywords("job-creation-attributes-supported", list(JOB_TEMPLATE)),
        attr("job-ids-supported", True),
        attr("job-priority-default", 50),
        attr("job-priority-supported", 1),
        _keywords("job-sheets-default", "none"),
        _keywords("job-sheets-supported", "none"),
        attr("jpeg-k-octets-supported", IntRange(0, 2**31 - 1)),
        attr("pdf-k-octets-supported", IntRange(0, 2**31 - 1)),
        attr("media-bottom-margin-supported", MARGIN),
        attr("media-left-margin-supported", MARGIN),
        attr("media-right-margin-supported", MARGIN),
        attr("media-top-margin-supported", MARGIN),
        attr("media-col-database", [_media_col(m) for m in MEDIA]),
        attr("media-col-default", _media_col(MEDIA_DEFAULT, ready=True)),
        attr("media-col-ready", [_media_col(m, ready=True) for m in MEDIA_READY]),
        _keywords(
            "media-col-supported",
            [
                "media-bottom-margin",
                "media-left-margin",
                "media-right-margin",
                "media-size",
                "media-source",
                "media-top-margin",
                "media-type",
            ],
        ),
        _keywords("media-default", MEDIA_DEFAULT),
        _keywords("media-ready", list(MEDIA_READY)),
        attr(
            "media-size-supported",
            [{"x-dimension": w, "y-dimension": h} for w, h in MEDIA.values()],
        ),
        _keywords("media-source-supported", "auto"),
        _keywords("media-supported", list(MEDIA)),
        _keywords("media-type-supported", "stationery"),
        _keywords("multiple-document-handling-supported", "separate-documents-uncollated-copies"),
        attr("multiple-document-jobs-supported", False),
        attr("multiple-operation-time-out", 60),
        _keywords("multiple-operation-time-out-action", "abort-job"),
        attr("natural-language-configured", "en", ValueTag.NATURAL_LANGUAGE),
        attr("number-up-default", 1),
        attr("number-up-supported", 1),
        attr("operations-supported", list(OPERATIONS), ValueTag.ENUM),
        attr("orientation-requested-default", 3, ValueTag.ENUM),
        attr("orientation-requested-supported", [3, 4, 5, 6], ValueTag.ENUM),
        _keywords("output-bin-default", "face-down"),
        _keywords("output-bin-supported", "face-down"),
        _keywords("overrides-supported", ["document-number", "pages"]),
        attr("page-ranges-supported", True),
        attr("pages-per-minute", 20),
        attr("pages-per-minute-color", 20),
        _keywords("pdl-override-supported", "attempted"),
        _keywords("print-color-mode-default", "auto"),
        _keywords("print-color-mode-supported", ["auto", "color", "monochrome"]),
        _keywords("print-content-optimize-default", "auto"),
        _keywords(
            "print-content-optimize-supported", ["auto", "photo", "text", "text-and-graphic"]
        ),
        _keywords("print-rendering-intent-default", "auto"),
        _keywords("print-rendering-intent-supported", ["auto", "perceptual", "relative"]),
        attr("print-quality-default", 4, ValueTag.ENUM),
        attr("print-quality-supported", [3, 4, 5], ValueTag.ENUM),
        attr("preferred-attributes-supported", False),
        attr("printer-config-change-date-time", BOOT_DATE),
        attr("printer-config-change-time", 1),
        attr("printer-current-time", datetime.now(UTC)),
        attr(
            "printer-device-id",
            "MFG:meshprint;MDL:Secure Print;CMD:PDF,URF,PWGRaster,JPEG;CLS:PRINTER;",
            text,
        ),
        attr("printer-geo-location", OutOfBand.UNKNOWN),
        attr("printer-get-attributes-supported", "document-format", ValueTag.KEYWORD),
        attr("printer-icons", me.icon, ValueTag.URI),
        attr("printer-info", "Secure Print: release your job at any printer", text),
        attr("printer-is-accepting-jobs", True),
        _keywords("printer-kind", "document"),
        attr("printer-location", me.location, text),
        attr("printer-make-and-model", "meshprint Secure Print", text),
        attr("printer-more-info", me.more_info, ValueTag.URI),
        attr("printer-name", me.name, name),
        attr("printer-organization", "", text),
        attr("printer-organizational-unit", "", text),
        attr("printer-resolution-default", Resolution(600, 600, 3)),
        attr("printer-resolution-supported", [Resolution(300, 300, 3), Resolution(600, 600, 3)]),
        attr("printer-state", 3, ValueTag.ENUM),
        attr("printer-state-change-date-time", BOOT_DATE),
        attr("printer-state-change-time", 1),
        _keywords("printer-state-reasons", "none"),
        attr(
            "printer-supply",
            b"index=1;class=supplyThatIsConsumed;type=toner;unit=percent;"
            b"maxcapacity=100;level=100;colorantname=black;",
        ),
        attr("printer-supply-description", "Toner (at the printer you release to)", text),
        attr("printer-supply-info-uri", me.more_info, ValueTag.URI),
        attr("printer-up-time", now),
        attr("printer-uri-supported", list(me.uris), ValueTag.URI),
        attr("printer-uuid", me.uuid, ValueTag.URI),
        attr(
            "pwg-raster-document-resolution-supported",
            [Resolution(300, 300, 3), Resolution(600, 600, 3)],
        ),
        _keywords("pwg-raster-document-sheet-back", "normal"),
        _keywords("pwg-raster-document-type-supported", ["black_1", "sgray_8", "srgb_8"]),
        attr("queued-job-count", jobs_queued),
        _keywords("sides-default", "one-sided"),
        _keywords("sides-supported", list(SIDES)),
        _keywords("uri-authentication-supported", [me.authentication] * uri_count),
        _keywords("uri-security-supported", ["tls", "none"][:uri_count]),
        _keywords("urf-supported", list(URF)),
        _keywords("which-jobs-supported", ["completed", "not-completed", "all"]),
    ]


# Job Template attributes (RFC 8011 5.2, PWG 5100.7): their -default, -supported, -ready
# and -database printer attributes make the "job-template" group; the rest are
# "printer-description" (RFC 8011 4.2.5.1).
TEMPLATE_NAMES = {
    "copies",
    "finishings",
    "job-hold-until",
    "job-priority",
    "job-sheets",
    "media",
    "media-bottom-margin",
    "media-col",
    "media-left-margin",
    "media-right-margin",
    "media-size",
    "media-source",
    "media-top-margin",
    "media-type",
    "multiple-document-handling",
    "number-up",
    "orientation-requested",
    "output-bin",
    "page-ranges",
    "print-color-mode",
    "print-content-optimize",
    "print-quality",
    "print-rendering-intent",
    "printer-resolution",
    "sides",
}
TEMPLATE_SUFFIXES = {"default", "supported", "ready", "database"}


def is_job_template(name: str) -> bool:
    base, _, suffix = name.rpartition("-")
    return suffix in TEMPLATE_SUFFIXES and base in TEMPLATE_NAMES


def select(attributes: list[Attribute], requested: list[str]) -> list[Attribute]:
    """The attributes a Get-Printer-Attributes asked for (`requested-attributes`): names,
    and the groups `all`, `job-template` and `printer-description`."""
    if not requested or "all" in requested:
        return attributes
    wanted = set(requested)
    template, description = "job-template" in wanted, "printer-description" in wanted
    return [
        a
        for a in attributes
        if a.name in wanted or (template if is_job_template(a.name) else description)
    ]
