"""The node's own printer (`ipp(s)://HOST:P/ipp/print`) with CUPS's ipptool, as an
iPhone prints: Get-Printer-Attributes anonymous, Validate-Job → 401, with Basic,
Create-Job + Send-Document of URF as `requesting-user-name=mobile` → held on three
holders for the signed-in user; refusals and malformed IPP hold nothing."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import re
import socket
import ssl
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance.printers.ipp.parser import parse
from appliance.site import admin
from tests.fixtures.ipp_samples import write_samples
from tests.integration.conftest import PASSWORDS, Site, wait_for

pytestmark = pytest.mark.integration
last_body = b""
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
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
  ATTR collection media-col {
    MEMBER collection media-size { MEMBER integer x-dimension 21590
                                   MEMBER integer y-dimension 27940 }
    MEMBER keyword media-source auto }
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
  EXPECT job-state WITH-VALUE 9 }
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
        ["ipptool", "-t", *extra, uri, str(test)],  # no -T: it breaks Debian 12's ipptool
        capture_output=True,
        stdin=subprocess.DEVNULL,  # no password prompt: answered with nothing
        text=True,
        timeout=120,
    )


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def _request(operation: int, *more: bytes) -> bytes:
    """An IPP/2.0 request with the three operation attributes every request starts with."""
    head = b"\x02\x00" + struct.pack(">HI", operation, 7) + b"\x01"
    head += b"\x47\x00\x12attributes-charset\x00\x05utf-8"
    head += b"\x48\x00\x1battributes-natural-language\x00\x02en"
    head += b"\x45\x00\x0bprinter-uri\x00\x1aipps://127.0.0.1/ipp/print"
    return head + b"".join(more) + b"\x03"


def raw_post(
    port: int, body: bytes, tls: bool = True, auth: str = "", path: str = "/ipp/print"
) -> tuple[int, http.client.HTTPMessage]:
    """Status and headers of the HTTP answer (the IPP answer is in `last_body`)."""
    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/ipp"}
    if auth:
        headers["Authorization"] = auth
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    global last_body
    last_body = response.read()
    conn.close()
    return response.status, response.headers


def test_an_iphone_prints_through_the_nodes_printer(site3: Site, tmp_path: Path) -> None:
    port = site3.mesh.nodes[0].ipp_port
    test, validate, doc = tmp_path / "iphone.test", tmp_path / "v.test", tmp_path / "p.urf"
    test.write_text(IPHONE)
    validate.write_text(VALIDATE)
    doc.write_bytes(URF)
    # No credentials, or wrong ones: 401 with a Basic challenge (what makes iOS prompt).
    anonymous = ipptool(f"ipps://127.0.0.1:{port}/ipp/print", validate)
    assert "client-error-not-authenticated" in anonymous.stdout
    validate_job = _request(0x0004)
    status, headers = raw_post(port, validate_job)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert raw_post(port, validate_job, auth=_basic("alice", "wrong-guess-1"))[0] == 401
    assert raw_post(port, validate_job, auth=_basic("nobody", "wrong-guess-1"))[0] == 401
    # Case-insensitive name, the job is alice's whatever requesting-user-name says.
    uri = f"ipps://Alice:{PASSWORDS['alice']}@127.0.0.1:{port}/ipp/print"
    assert ipptool(uri, validate).returncode == 0
    result = ipptool(uri, test, str(doc))
    assert result.returncode == 0, result.stdout
    jobs = wait_for(lambda: site3.jobs(0) or None)
    assert [j["title"] for j in jobs] == ["From an iPhone"]
    assert jobs[0]["options"] == {
        "copies": 2,
        "sides": "two-sided-long-edge",
        "media": "na_letter_8.5x11in",  # from media-col's size, as iOS sends it
    }
    assert (
        len(
            wait_for(
                lambda: len(site3.held_on(jobs[0]["id"])) == 3 and site3.held_on(jobs[0]["id"])
            )
        )
        == 3
    )
    assert site3.release(0, jobs[0]["id"]) == URF


def test_a_print_job_with_a_content_length_is_held_whole(site3: Site) -> None:
    """A body with a Content-Length (not chunked): the document's size is known, so each
    chunk is sealed as it arrives and the copies go with a length; several chunks."""
    port = site3.mesh.nodes[0].ipp_port
    document = PDF + os.urandom(600_000)
    pdf = b"\x49\x00\x0fdocument-format\x00\x0fapplication/pdf"
    auth = _basic("alice", PASSWORDS["alice"])
    assert raw_post(port, _request(0x0002, pdf) + document, auth=auth)[0] == 200
    assert parse(last_body).code == 0
    (job,) = wait_for(lambda: site3.jobs(0) or None)
    assert job["size"] == len(document) and job["pages"] == 1
    wait_for(lambda: len(site3.held_on(job["id"])) == 3)
    assert site3.release(1, job["id"]) == document


def test_refusals_are_ipp_answers_and_hold_nothing(site3: Site, tmp_path: Path) -> None:
    port = site3.mesh.nodes[0].ipp_port
    print_job = _request(0x0002) + URF
    auth = _basic("alice", PASSWORDS["alice"])
    # Plain ipp:// Print-Job: 426 Upgrade Required, even with a password (never used).
    status, headers = raw_post(port, print_job, tls=False, auth=auth)
    assert status == 426 and "TLS" in headers["Upgrade"]
    # Over IPPS without credentials: 401.
    assert raw_post(port, print_job)[0] == 401
    # Unsupported format, signed in.
    tiff = _request(0x0002, b"\x49\x00\x0fdocument-format\x00\x0aimage/tiff") + URF
    assert raw_post(port, tiff, auth=auth)[0] == 200
    assert parse(last_body).code == 0x040A
    # Malformed: truncated, a length past the end, a bad tag; a version 0.0.
    full = _request(0x0002)
    for bad in (full[:20], full[:-1] + b"\x45\xff\xff", full[:9] + b"\x99\x00"):
        assert raw_post(port, bad, auth=auth)[0] == 200
        assert parse(last_body).code == 0x0400
    assert raw_post(port, b"\x00\x00" + full[2:], auth=auth)[0] == 200
    assert parse(b"\x02\x00" + last_body[2:]).code == 0x0503
    # Oversize: the site's limit, as an IPP status.
    site3.settings(max_job_size="1M")
    big = _request(0x0002) + b"%PDF-1.4\n" + bytes(1_200_000)
    assert raw_post(port, big, auth=auth)[0] == 200
    assert parse(last_body).code == 0x0408
    assert site3.jobs(0) == []
    # Get-Printer-Attributes stays anonymous, also over plain ipp://
    assert raw_post(port, _request(0x000B), tls=False)[0] == 200
    assert parse(last_body).code == 0


IPPTOOL = Path("/usr/share/cups/ipptool")
# CUPS's files that apply to a printer whose jobs are held (each passes with no [FAIL]);
# ipp-everywhere.test INCLUDEs ipp-2.0.test, which INCLUDEs ipp-1.1.test.
SUITES = (
    "ipp-everywhere.test",
    "print-job.test",
    "print-job-gzip.test",
    "print-job-deflate.test",
    "print-job-letter.test",
    "print-job-media-col.test",
    "print-job-and-wait.test",
    "create-job.test",
    "validate-job.test",
    "get-jobs.test",
    "get-completed-jobs.test",
    "get-printer-attributes.test",
    "get-printer-description-attributes.test",
    "get-job-template-attributes.test",
    "identify-printer.test",
    "identify-printer-display.test",
    "identify-printer-multiple.test",
)
ON_A_JOB_URI = ("get-job-attributes.test", "get-job-attributes2.test")  # run at a job's URI


def run_suites(uri: str, samples: Path, *suites: str) -> subprocess.CompletedProcess[str]:
    """ipptool in the samples' directory (it reads a relative FILE from there first)."""
    return subprocess.run(
        ["ipptool", "-t", "-f", "document-a4.pdf", "-d", "filetype=application/pdf", uri]
        + [str(IPPTOOL / suite) for suite in suites],
        capture_output=True,
        cwd=samples,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=600,
    )


def test_cups_ipptool_suites_pass_and_every_job_is_held_sealed(site4: Site, tmp_path: Path) -> None:
    """CUPS's own conformance files, their print tests included: PWG raster of every type
    and resolution the printer advertises, plain, gzip and deflate, PDF and JPEG; every
    job they print is held, sealed, for the signed-in user, and none of it is on disk
    in the clear."""
    samples = tmp_path / "samples"
    written = write_samples(samples, IPPTOOL / "ipp-everywhere.test")
    port = site4.mesh.nodes[0].ipp_port
    uri = f"ipps://alice:{PASSWORDS['alice']}@127.0.0.1:{port}/ipp/print"
    result = run_suites(uri, samples, *SUITES)
    report = result.stdout + result.stderr
    failed = [
        line
        for line in report.splitlines()
        if "[FAIL]" in line or "EXPECTED" in line or "GOT" in line
    ]
    assert result.returncode == 0 and "[FAIL]" not in report, (failed, report[-4000:])
    assert "cannot be read" not in report  # no test file stopped at a missing document
    for printed in (
        "Print-Job with A4 PDF, Duplex",
        "Print-Job with Grayscale JPEG on US Letter",
        "Print onepage-letter @ 600dpi, black-1, deflate",
        "Print document-a4 @ 300dpi, srgb-8, gzip",
        "Print file using Print-Job and compression=deflate",
        "... and send-document",
    ):
        assert re.search(rf"{re.escape(printed)}\s+\[PASS\]", report), printed
    # 2 resolutions x 17 documents x (plain, gzip, deflate), then the rest
    assert len(re.findall(r"Print \S+ @ \d+dpi.*\[PASS\]", report)) == 102
    # A job's URI, for the files that address a job by it.
    jobs = wait_for(lambda: (held := site4.jobs(0)) and len(held) >= 102 and held)
    by_uri = run_suites(f"{uri}/1", samples, *ON_A_JOB_URI)
    assert by_uri.returncode == 0 and "[FAIL]" not in by_uri.stdout, by_uri.stdout[-2000:]
    # Held for alice (whatever requesting-user-name said), on three holders, with its
    # options; a compressed job holds the document itself.
    assert {j["owner"] for j in jobs} == {"alice"}
    letters = [j for j in jobs if j["title"] == "onepage-letter"]
    assert len(letters) == 2 * 3 * 3 and {j["format"] for j in letters} == {"image/pwg-raster"}
    # the last two: 600 dpi srgb-8, deflate then gzip
    for job in sorted(letters, key=lambda j: j["created_at"])[-2:]:
        wait_for(lambda job=job: len(site4.held_on(job["id"])) == 3)
        sample = samples / "pwg-raster-samples-600dpi/srgb-8/onepage-letter-srgb-8-600dpi.pwg"
        assert site4.release(1, job["id"]) == sample.read_bytes()
    # Nothing in the clear on any node's disk: the JPEGs and PDFs printed.
    plain = [p.read_bytes() for p in written if p.suffix in (".jpg", ".pdf")]
    pieces = [doc[o : o + 48] for doc in plain for o in range(64, len(doc) - 48, 499)]
    pieces += [b"/MediaBox [0 0 595 842]"]
    for path in site4.mesh.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(piece in content for piece in pieces), f"plaintext in {path}"


PRINT_JOB = """
{ NAME "Print-Job" OPERATION Print-Job
  GROUP operation-attributes-tag
  ATTR charset attributes-charset utf-8
  ATTR naturalLanguage attributes-natural-language en
  ATTR uri printer-uri $uri
  ATTR name requesting-user-name $user
  ATTR name job-name "$title"
  ATTR mimeMediaType document-format application/pdf
  FILE $filename
  STATUS successful-ok
  EXPECT job-state WITH-VALUE 9 }
"""


def personal_url(site: Site, *more: str) -> str:
    """`meshprint user printer-url alice --rotate` on the controller: the URL it prints."""
    port = site.mesh.nodes[0].ipp_port
    data = str(site.mesh.nodes[0].data)
    result = site.mesh.cli(
        "user",
        "printer-url",
        "alice",
        "--data",
        data,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *more,
    )
    site.mesh.wait_directory()
    return result.stdout.splitlines()[0]


def refused(port: int, path: str) -> bool:
    """Whether a Print-Job to `path` is answered client-error-not-authorized."""
    return raw_post(port, _request(0x0002) + PDF, path=path)[0] == 200 and (
        parse(last_body).code == 0x0403
    )


def test_a_personal_url_prints_without_credentials_until_it_is_replaced(
    site3: Site, tmp_path: Path
) -> None:
    """As Windows' class driver, ChromeOS or `lp` would: no sign-in, the URL says who."""
    url = personal_url(site3, "--rotate")
    secret = url.rsplit("/", 1)[1]
    assert url.startswith("ipps://127.0.0.1:") and len(secret) >= 22
    # Without --rotate nothing is printed: only the hash is kept.
    data = str(site3.mesh.nodes[0].data)
    shown = site3.mesh.cli("user", "printer-url", "alice", "--data", data, check=False)
    assert shown.returncode == 1 and "release page" in shown.stderr and secret not in shown.stdout
    test, doc, pdf = tmp_path / "iphone.test", tmp_path / "p.urf", tmp_path / "p.pdf"
    test.write_text(IPHONE)
    doc.write_bytes(URF)
    pdf.write_bytes(PDF)
    # Create-Job + Send-Document, no credentials: held for alice on three holders, on the
    # second super node too (it checks the hash from its own copy of the directory).
    result = ipptool(url, test, str(doc))
    assert result.returncode == 0, result.stdout
    jobs = wait_for(lambda: site3.jobs(0) or None)
    assert [j["title"] for j in jobs] == ["From an iPhone"]
    wait_for(lambda: len(site3.held_on(jobs[0]["id"])) == 3)
    other = url.replace(f":{site3.mesh.nodes[0].ipp_port}/", f":{site3.mesh.nodes[1].ipp_port}/")
    print_job = tmp_path / "print.test"
    print_job.write_text(PRINT_JOB)
    # An alias as requesting-user-name (Windows sends HOST\\user): matched, held for alice.
    site3.mesh.cli("user", "alias", "alice", "OFFICE-PC\\Alice", "--data", data)
    site3.mesh.wait_directory()
    listed = site3.mesh.cli("user", "list", "--data", data).stdout
    assert "alice  (aliases: office-pc\\alice)" in listed.splitlines()
    result = subprocess.run(
        [
            "ipptool",
            "-t",
            "-f",
            str(pdf),
            "-d",
            "user=office-pc\\alice",
            "-d",
            "title=Windows",
            other,
            str(print_job),
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    held = wait_for(lambda: {j["title"]: j for j in site3.jobs(0)}.get("Windows"))
    assert held["owner"] == "alice"
    wait_for(lambda: len(site3.held_on(held["id"])) == 3)
    # Over plain ipp:// the secret would travel in the clear: 426, as for passwords.
    path = f"/ipp/print/{secret}"
    port = site3.mesh.nodes[0].ipp_port
    status, headers = raw_post(port, _request(0x0002) + PDF, tls=False, path=path)
    assert status == 426 and "TLS" in headers["Upgrade"]
    # Rotated: the old URL is refused with client-error-not-authorized, nothing held;
    # the new one works.
    new = personal_url(site3, "--rotate")
    assert new != url
    assert wait_for(lambda: refused(port, path))
    # A new password replaces it too (a new key pair, a new sealed secret).
    admin.reset_password(site3.admin_site(), "alice", "a-new-password-77")
    site3.mesh.wait_directory()
    new_path = "/ipp/print/" + new.rsplit("/", 1)[1]
    assert wait_for(lambda: refused(port, new_path))
    titles = [j["title"] for j in site3.mesh.client(0).jobs(("alice", "a-new-password-77"))]
    assert sorted(titles) == ["From an iPhone", "Windows"]
    # Revoked: refused the same way; Get-Printer-Attributes stays anonymous everywhere.
    personal_url(site3, "--revoke")
    assert raw_post(port, _request(0x000B), path=new_path)[0] == 200
    assert parse(last_body).code == 0


def test_plain_ipp_upgrades_to_tls_on_the_same_connection(site3: Site, tmp_path: Path) -> None:
    """RFC 2817, as libcups does after a 426 (and ipptool -E): `OPTIONS *` with `Upgrade:
    TLS/1.2` → 101, the TLS handshake on the same connection, the OPTIONS answered over
    TLS, then the job signed in."""
    port = site3.mesh.nodes[0].ipp_port
    validate = tmp_path / "v.test"
    validate.write_text(VALIDATE)
    # By hand: 101, then TLS on the very socket; a client that then speaks plain HTTP
    # again is closed, never served in the clear.
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    ask = (
        b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n"
    )
    for speaks_tls in (True, False):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(ask)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 101 ") and b"Upgrade: TLS/1.2" in head, head
            if speaks_tls:
                with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                    # The OPTIONS is answered over TLS (RFC 2817 3.3), then the next one.
                    answer = b""
                    while b"\r\n\r\n" not in answer:
                        answer += tls.recv(1)
                    assert answer.startswith(b"HTTP/1.1 200 "), answer
                    body = _request(0x000B)
                    tls.sendall(
                        b"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                        b"application/ipp\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    assert tls.recv(12) == b"HTTP/1.1 200"
            else:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                with contextlib.suppress(ConnectionResetError):  # closed, request unread
                    assert sock.recv(100) == b""  # closed
    # libcups: asked for TLS up front (-E), and as macOS does it, a plain ipp:// job
    # answered 426, then the upgrade on a new connection; both sign in over TLS.
    uri = f"ipp://alice:{PASSWORDS['alice']}@127.0.0.1:{port}/ipp/print"
    for options in (["-E"], []):
        upgraded = subprocess.run(
            ["ipptool", *options, "-t", uri, str(validate)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=120,
        )
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr


ALL_JOBS = b"\x44\x00\x0awhich-jobs\x00\x03all\x44\x00\x14requested-attributes\x00\x03all"


def _jobs_seen(
    port: int, *more: bytes, auth: str = "", path: str = "/ipp/print", tls: bool = True
) -> list[dict[str, Any]]:
    """The job groups of a Get-Jobs (which-jobs=all, requested-attributes=all) answer;
    fails on anything but HTTP 200 with successful-ok."""
    status, _ = raw_post(port, _request(0x000A, ALL_JOBS, *more), tls, auth, path)
    assert status == 200, status
    answer = parse(last_body)
    assert answer.code == 0, hex(answer.code)
    return [
        {name: a.values[0] for name, a in group.attributes.items()}
        for group in answer.groups
        if group.tag == 0x02
    ]


def test_only_a_jobs_owner_sees_its_name_and_sender(site4: Site, tmp_path: Path) -> None:
    """Get-Jobs and Get-Job-Attributes answer anyone (a phone monitors its job), but the
    job's name and its sender's name only to its owner, signed in or through their
    personal URL (docs/security.md)."""
    port = site4.mesh.nodes[0].ipp_port
    pdf, print_job = tmp_path / "p.pdf", tmp_path / "print.test"
    pdf.write_bytes(PDF)
    print_job.write_text(PRINT_JOB)
    uri = f"ipps://alice:{PASSWORDS['alice']}@127.0.0.1:{port}/ipp/print"
    named = ["-d", "user=mobile", "-d", "title=Payslip"]
    printed = subprocess.run(
        ["ipptool", "-t", "-f", str(pdf), *named, uri, str(print_job)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stdout
    alice, bob = _basic("alice", PASSWORDS["alice"]), _basic("bob", PASSWORDS["bob"])
    # Anonymous, over IPPS or plain IPP, and bob signed in: the jobs, not whose or what.
    for auth, tls in (("", True), ("", False), (bob, True)):
        jobs = _jobs_seen(port, auth=auth, tls=tls)
        assert jobs and all("job-state" in j and "job-uri" in j for j in jobs)
        assert all("job-name" not in j and "job-originating-user-name" not in j for j in jobs)
        assert b"Payslip" not in last_body and b"alice" not in last_body
        assert b"mobile" not in last_body
    # Its owner sees them, signed in or through the personal URL.
    mine = {j["job-name"]: j for j in _jobs_seen(port, auth=alice)}
    assert mine["Payslip"]["job-originating-user-name"] == "alice"
    secret_path = "/ipp/print/" + personal_url(site4, "--rotate").rsplit("/", 1)[1]
    assert "Payslip" in {j.get("job-name") for j in _jobs_seen(port, path=secret_path)}
    # Get-Job-Attributes the same way (job-id of the payslip).
    job_id = struct.pack(">I", mine["Payslip"]["job-id"])
    ask = _request(0x0009, b"\x21\x00\x06job-id\x00\x04" + job_id)
    assert raw_post(port, ask)[0] == 200 and parse(last_body).code == 0
    assert b"job-state" in last_body and b"Payslip" not in last_body
    assert raw_post(port, ask, auth=alice)[0] == 200 and b"Payslip" in last_body
    assert raw_post(port, ask, auth=bob)[0] == 200 and b"Payslip" not in last_body
    # my-jobs asks who "my" is; bob has none; a wrong password is 401 as for a job.
    my_jobs = b"\x22\x00\x07my-jobs\x00\x01\x01"
    status, headers = raw_post(port, _request(0x000A, my_jobs))
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert _jobs_seen(port, my_jobs, auth=bob) == []
    assert {j["job-originating-user-name"] for j in _jobs_seen(port, my_jobs, auth=alice)} == {
        "alice"
    }
    assert raw_post(port, _request(0x000A), auth=_basic("alice", "wrong-guess-2"))[0] == 401
