"""The node's own printer (`ipp(s)://HOST:P/ipp/print`) with CUPS's ipptool, as an
iPhone prints: Get-Printer-Attributes anonymous, Validate-Job → 401, with Basic,
Create-Job + Send-Document of URF as `requesting-user-name=mobile` → held on three
holders for the signed-in user; refusals and malformed IPP hold nothing."""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import subprocess
from pathlib import Path

import pytest

from appliance.printers.ipp.parser import parse
from tests.integration.conftest import PASSWORDS, Site, wait_for

pytestmark = pytest.mark.integration
URF = b"UNIRAST\x00" + struct.pack(">I", 1) + bytes(32) + b"\x00" * 64

IPHONE = """
{ NAME "Get-Printer-Attributes" OPERATION Get-Printer-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  STATUS successful-ok
  EXPECT urf-supported EXPECT media-col-ready EXPECT printer-uuid
  EXPECT ipp-features-supported WITH-VALUE ipp-everywhere }
{ NAME "Create-Job" OPERATION Create-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name mobile
  ATTR name job-name "From an iPhone"
  GROUP job-attributes-tag
  ATTR integer copies 2
  ATTR keyword sides two-sided-long-edge
  STATUS successful-ok
  EXPECT job-id OF-TYPE integer }
{ NAME "Send-Document" OPERATION Send-Document
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job-id
  ATTR name requesting-user-name mobile
  ATTR mimeMediaType document-format image/urf
  ATTR boolean last-document true
  FILE $filename
  STATUS successful-ok
  EXPECT job-state WITH-VALUE 4 }
{ NAME "Get-Job-Attributes" OPERATION Get-Job-Attributes
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR integer job-id $job-id
  STATUS successful-ok
  EXPECT job-originating-user-name WITH-VALUE alice }
"""

VALIDATE = """
{ NAME "Validate-Job" OPERATION Validate-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name mobile
  STATUS successful-ok }
"""


def ipptool(uri: str, test: Path, *files: str) -> subprocess.CompletedProcess[str]:
    extra = ["-f", files[0]] if files else []
    return subprocess.run(
        ["ipptool", "-T", "30", "-t", *extra, uri, str(test)],
        capture_output=True,
        stdin=subprocess.DEVNULL,  # no password prompt: answered with nothing
        text=True,
        timeout=120,
    )


def raw_post(port: int, body: bytes, tls: bool = True, auth: str = "") -> tuple[int, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sock.close()
    headers = {"Content-Type": "application/ipp"}
    if auth:
        headers["Authorization"] = auth
    conn.request("POST", "/ipp/print", body, headers)
    response = conn.getresponse()
    return response.status, response.read()


def test_an_iphone_prints_through_the_nodes_printer(site3: Site, tmp_path: Path) -> None:
    port = site3.mesh.nodes[0].ipp_port
    test, validate, doc = tmp_path / "iphone.test", tmp_path / "v.test", tmp_path / "p.urf"
    test.write_text(IPHONE)
    validate.write_text(VALIDATE)
    doc.write_bytes(URF)
    # No credentials: 401 (ipptool cannot prompt, so it fails the test).
    anonymous = ipptool(f"ipps://127.0.0.1:{port}/ipp/print", validate)
    assert anonymous.returncode != 0
    wrong = ipptool(f"ipps://alice:nope@127.0.0.1:{port}/ipp/print", validate)
    assert wrong.returncode != 0
    # Case-insensitive name, the job is alice's whatever requesting-user-name says.
    uri = f"ipps://Alice:{PASSWORDS['alice']}@127.0.0.1:{port}/ipp/print"
    assert ipptool(uri, validate).returncode == 0
    result = ipptool(uri, test, str(doc))
    assert result.returncode == 0, result.stdout
    jobs = wait_for(lambda: site3.jobs(0) or None)
    assert [j["title"] for j in jobs] == ["From an iPhone"]
    assert jobs[0]["options"] == {"copies": 2, "sides": "two-sided-long-edge"}
    assert (
        len(
            wait_for(
                lambda: len(site3.held_on(jobs[0]["id"])) == 3 and site3.held_on(jobs[0]["id"])
            )
        )
        == 3
    )
    assert site3.release(0, jobs[0]["id"]) == URF


def test_refusals_are_ipp_answers_and_hold_nothing(site3: Site, tmp_path: Path) -> None:
    port = site3.mesh.nodes[0].ipp_port
    head = b"\x02\x00\x00\x02\x00\x00\x00\x07\x01"
    head += b"\x47\x00\x12attributes-charset\x00\x05utf-8"
    head += b"\x48\x00\x1battributes-natural-language\x00\x02en"
    head += b"\x45\x00\x0bprinter-uri\x00\x1aipps://127.0.0.1/ipp/print"
    # Plain ipp:// Print-Job: 426 Upgrade Required, no password asked in the clear.
    status, _ = raw_post(port, head + b"\x03" + URF, tls=False)
    assert status == 426
    # Over IPPS without credentials: 401.
    assert raw_post(port, head + b"\x03" + URF)[0] == 401
    # Unsupported format, signed in.
    import base64

    auth = "Basic " + base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
    fmt = b"\x49\x00\x0fdocument-format\x00\x0aimage/tiff"
    status, body = raw_post(port, head + fmt + b"\x03" + URF, auth=auth)
    assert status == 200 and parse(body).code == 0x040A
    # Malformed: truncated, a huge length, a bad tag.
    for bad in (head[:20], head + b"\x45\xff\xff", b"\x02\x00\x00\x0b\x00\x00\x00\x01\x01\x99"):
        status, body = raw_post(port, bad, auth=auth)
        assert status == 200 and parse(body).code == 0x0400
    assert site3.jobs(0) == []
    # Get-Printer-Attributes stays anonymous, also over plain ipp://
    gpa = head.replace(b"\x00\x02\x00\x00\x00\x07", b"\x00\x0b\x00\x00\x00\x07", 1) + b"\x03"
    status, body = raw_post(port, gpa, tls=False)
    assert status == 200 and parse(body).code == 0
