"""The node printer's request paths and Get-Printer-Attributes' attribute groups."""

from __future__ import annotations

import pytest

from appliance.intake.ipp import attributes
from appliance.intake.ipp.printer import _route

ME = attributes.Identity(
    uris=("ipps://h:631/ipp/print", "ipp://h:631/ipp/print"),
    uuid="urn:uuid:00000000-0000-0000-0000-000000000000",
    name="Secure Print",
    location="",
    more_info="https://h/",
    icon="https://h/icon.png",
)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/ipp/print", (None, None)),
        ("/ipp/print/7", (None, 7)),  # a job's URI
        ("/ipp/print/s3cr-et_", ("s3cr-et_", None)),  # a personal printer URL
        ("/ipp/print/s3cr-et_/7", ("s3cr-et_", 7)),  # a job's URI under it
        ("/ipp/print/", None),
        ("/ipp/print/a/b", None),
        ("/ipp/print/7/8", None),
        ("/ipp/print/a/7/", None),
        ("/ipp/printer", None),
        ("/x/ipp/print", None),
    ],
)
def test_the_printers_paths(path: str, route: tuple[str | None, int | None] | None) -> None:
    assert _route(path) == route


def names(requested: list[str]) -> set[str]:
    every = attributes.printer_attributes(ME, 0)
    return {a.name for a in attributes.select(every, requested)}


def test_description_and_template_groups_split_the_attributes() -> None:
    everything = names(["all"])
    assert names([]) == everything
    description, template = names(["printer-description"]), names(["job-template"])
    assert description | template == everything and not description & template
    assert {"copies-default", "media-col-database", "sides-supported"} <= template
    assert {"printer-name", "compression-supported", "pdl-override-supported"} <= description
    assert names(["job-template", "printer-name"]) == template | {"printer-name"}
    assert names(["media-col-database"]) == {"media-col-database"}
