"""The node printer's request paths, Get-Printer-Attributes' attribute groups, and the
job template attributes it keeps for release."""

from __future__ import annotations

import pytest

from appliance.intake.ipp import attributes
from appliance.intake.ipp.printer import JOB_GROUP, OPERATION_GROUP, IppRefusal, Printer, _route
from appliance.printers.ipp import IppMessage, Operation, Status
from appliance.printers.ipp.serializer import attr

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


def job_request(**job: object) -> IppMessage:
    message = IppMessage(Operation.CREATE_JOB)
    for name, value in job.items():
        message.group(JOB_GROUP).add(attr(name.replace("_", "-"), value))
    return message


def test_the_paper_size_a_job_asks_for_is_kept_for_release() -> None:
    letter = {"media-size": {"x-dimension": 21590, "y-dimension": 27940}, "media-source": "auto"}
    # What iOS and Mopria send: media-col with the size of one of media-col-ready.
    assert Printer._options(job_request(media_col=letter)) == {"media": "na_letter_8.5x11in"}
    assert Printer._options(job_request(media="iso_a5_148x210mm", copies=2)) == {
        "copies": 2,
        "media": "iso_a5_148x210mm",
    }
    assert Printer._options(job_request(media_col={"media-source": "auto"})) == {}
    # A size the printer does not offer: its own paper, unless the client wants fidelity.
    photo = {"media-size": {"x-dimension": 10160, "y-dimension": 15240}}
    for asked in ({"media": "iso_a3_297x420mm"}, {"media_col": photo}):
        assert Printer._options(job_request(**asked)) == {}
        strict = job_request(**asked)
        strict.group(OPERATION_GROUP).add(attr("ipp-attribute-fidelity", True))
        with pytest.raises(IppRefusal) as refused:
            Printer._options(strict)
        assert refused.value.status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
