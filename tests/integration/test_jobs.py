"""Submit, list, release and delete on a four-node mesh, and the bad input around them."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import ssl
from pathlib import Path
from typing import Any

import pytest

from appliance.crypto import shamir
from appliance.crypto.stream import decrypt_stream
from appliance.https.auth import basic_header
from appliance.jobs.release import make_command
from appliance.mesh.peers import LIVE_WINDOW
from appliance.site import recovery
from appliance.site.ca import SiteCA
from tests.integration.conftest import PASSWORDS, Site, random_bytes, wait_for

pytestmark = pytest.mark.integration
MB = 1024 * 1024


def copies(site: Site, job_id: str) -> int:
    return len(site.held_on(job_id))


def test_release_through_a_node_that_holds_no_copy(site4: Site) -> None:
    data = random_bytes(3 * MB + 17)
    receipt = site4.submit(1, data, title="Quarterly report.pdf")
    assert len(set(receipt["holders"])) == 3
    assert len(receipt["durable_on"]) >= 2, "acknowledged before two copies were durable"
    wait_for(lambda: copies(site4, receipt["id"]) == 3)
    outsider = next(n.index for n in site4.mesh.nodes if n.id not in receipt["holders"])

    listed = {j["id"]: j for j in site4.jobs(outsider)}
    job = listed[receipt["id"]]
    assert job["title"] == "Quarterly report.pdf"
    assert job["size"] == len(data)
    assert sorted(job["copies"]) == sorted(receipt["holders"])

    assert site4.release(outsider, receipt["id"]) == data
    wait_for(lambda: copies(site4, receipt["id"]) == 0)
    assert site4.error(site4.release, 0, receipt["id"]).status == 404


def test_50mb_job_leaves_no_plaintext_and_one_share_per_holder(site4: Site) -> None:
    data = random_bytes(50 * MB)
    receipt = site4.submit(0, data)
    job_id = receipt["id"]
    wait_for(lambda: copies(site4, job_id) == 3)

    rng = random.Random(7)
    samples = [data[o : o + 32] for o in (rng.randrange(len(data) - 32) for _ in range(24))]
    for path in site4.mesh.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(s in content for s in samples), f"plaintext found in {path}"

    shares = {}
    for index in site4.held_on(job_id):
        db = sqlite3.connect(site4.mesh.nodes[index].data / "meshprint.db")
        rows = db.execute("SELECT share_x, share FROM jobs WHERE id=?", (job_id,)).fetchall()
        db.close()
        assert len(rows) == 1
        shares[rows[0][0]] = rows[0][1]
    assert len(shares) == 3, "each holder must have its own share point"
    # Any two holders' shares are the real key: they decrypt the sealed copy.
    (x1, s1), (x2, s2) = list(shares.items())[:2]
    key = shamir.combine({x1: s1, x2: s2})
    holder = site4.mesh.nodes[site4.held_on(job_id)[0]]
    with (holder.data / "jobs" / f"{job_id}.sealed").open("rb") as sealed:
        first = next(decrypt_stream(sealed.read, key, job_id.encode()))
    assert data.startswith(first)

    assert site4.release(2, job_id) == data


def test_wrong_or_missing_credentials_get_401(site4: Site) -> None:
    err = site4.error(site4.submit, 0, b"x", token="not-the-token")
    assert err.status == 401 and "wrong user name or token" in str(err)
    err = site4.error(site4.submit, 0, b"x", user="mallory", token="whatever")
    assert err.status == 401 and "wrong user name or token" in str(err)
    response_err = site4.error(site4.mesh.client(0, "submit").submit, None, b"x", "doc")
    assert response_err.status == 401
    err = site4.error(site4.release, 0, "j" + "0" * 24, password="wrong-password")
    assert err.status == 401 and "wrong user name or password" in str(err)
    assert not site4.jobs(0, "bob")


def test_other_users_job_and_unknown_ids_get_404(site4: Site) -> None:
    receipt = site4.submit(0, b"alice's payslip")
    assert receipt["id"] not in {j["id"] for j in site4.jobs(1, "bob")}
    assert site4.error(site4.release, 1, receipt["id"], user="bob").status == 404
    client = site4.mesh.client(2)
    bob = ("bob", PASSWORDS["bob"])
    assert site4.error(client.delete, receipt["id"], bob).status == 404
    for bad in ("j" + "0" * 24, "..%2F..%2Fetc%2Fpasswd", "j123", "%00"):
        assert site4.error(site4.release, 0, bad).status == 404
    assert site4.release(3, receipt["id"]) == b"alice's payslip"


def test_owner_deletes_a_job_everywhere(site4: Site) -> None:
    receipt = site4.submit(2, b"not needed after all")
    wait_for(lambda: copies(site4, receipt["id"]) == 3)
    client = site4.mesh.client(0)
    assert client.delete(receipt["id"], ("alice", PASSWORDS["alice"])) == receipt["id"]
    assert copies(site4, receipt["id"]) == 0
    assert receipt["id"] not in {j["id"] for j in site4.jobs(1)}


def test_authorized_release_needs_no_password_and_cannot_be_replayed(site4: Site) -> None:
    data = random_bytes(MB)
    receipt = site4.submit(0, data)
    wait_for(lambda: copies(site4, receipt["id"]) == 3)
    outsider = next(n.index for n in site4.mesh.nodes if n.id not in receipt["holders"])
    command = make_command(site4.release_signer(), receipt["id"], site4.mesh.nodes[outsider].id)
    client = site4.mesh.client(outsider)
    with client.release_document(receipt["id"], command=command) as response:
        assert response.read() == data
    wait_for(lambda: copies(site4, receipt["id"]) == 0)
    assert site4.error(client.release_document, receipt["id"], command=command).status == 409

    # A command signed by anyone but the release authority is refused and changes nothing:
    # a made-up CA, and the site's own CA key (a stolen appliance of an older version,
    # which kept it in the clear).
    other = site4.submit(0, b"stay held")
    stolen = site4.ca_with_key()
    for signer in (SiteCA.create("evil"), stolen):
        forged = make_command(signer, other["id"], site4.mesh.nodes[outsider].id)
        err = site4.error(client.release_document, other["id"], command=forged)
        assert err.status == 403
    assert other["id"] in {j["id"] for j in site4.jobs(0)}


def test_authorized_release_with_the_cli(site4: Site, tmp_path: Path) -> None:
    receipt = site4.submit(1, b"printed by the admin")
    out = tmp_path / "out.bin"
    node0 = site4.mesh.nodes[0]
    wrong = tmp_path / "wrong-key"
    wrong.write_text(recovery.new_recovery_key() + "\n")

    def release(key_file: Path) -> Any:
        return site4.mesh.cli(
            "release", receipt["id"], "--node", node0.release, "--ca", str(site4.mesh.ca),
            "--data", str(node0.data), "--key-file", str(key_file), "--to", str(out),
            check=False,
        )  # fmt: skip

    refused = release(wrong)
    assert refused.returncode == 1 and "recovery key" in refused.stderr
    assert not out.exists() and receipt["id"] in {j["id"] for j in site4.jobs(1)}
    result = release(site4.mesh.recovery_key_file)
    assert out.read_bytes() == b"printed by the admin", result.stderr


def test_oversized_upload_gets_413_and_stores_nothing(site4: Site) -> None:
    site4.settings(max_job_size="1M")
    try:
        before = {j["id"] for j in site4.jobs(0)}
        err = site4.error(site4.submit, 1, random_bytes(2 * MB))
        assert err.status == 413 and "at most 1048576 bytes" in str(err)
        # Without a length up front (chunked), the limit is enforced while streaming.
        chunks = iter([random_bytes(256 * 1024)] * 8)
        err = site4.error(
            site4.mesh.client(1, "submit").submit, ("alice", site4.tokens["alice"]), chunks, "doc"
        )
        assert err.status == 413
        assert {j["id"] for j in site4.jobs(0)} == before
        wait_for(lambda: all(not any((n.data / "incoming").iterdir()) for n in site4.mesh.nodes))
    finally:
        site4.settings(max_job_size="512M")


def test_full_disk_gets_507(site4: Site) -> None:
    site4.settings(disk_reserve="1T")
    try:
        err = site4.error(site4.submit, 0, random_bytes(MB))
        assert err.status == 507 and "out of space" in str(err)
    finally:
        site4.settings(disk_reserve="64M")
    assert site4.submit(0, b"fits again")["id"]


def test_truncated_upload_leaves_nothing(site4: Site) -> None:
    before = {j["id"] for j in site4.jobs(0)}
    node = site4.mesh.nodes[1]
    ctx = ssl.create_default_context(cafile=str(site4.mesh.ca))
    ctx.check_hostname = False
    auth = basic_header("alice", site4.tokens["alice"])
    with (
        socket.create_connection(("127.0.0.1", node.submit_port)) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(
            f"POST /v1/jobs?title=cut HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n"
            f"Content-Length: {4 * MB}\r\n\r\n".encode()
            + os.urandom(MB)
        )
    wait_for(lambda: all(not any((n.data / "incoming").iterdir()) for n in site4.mesh.nodes))
    assert {j["id"] for j in site4.jobs(0)} == before


def test_cli_submit_jobs_release(site4: Site, tmp_path: Path) -> None:
    doc = tmp_path / "letter.txt"
    doc.write_bytes(b"Dear colleague,\n" * 1000)
    password = tmp_path / "pw"
    password.write_text(PASSWORDS["alice"] + "\n")
    n = site4.mesh.nodes
    ca = ["--ca", str(site4.mesh.ca)]
    job_id = site4.mesh.cli(
        "submit",
        str(doc),
        "--node",
        n[2].submit,
        *ca,
        "--user",
        "alice",
        "--token",
        site4.tokens["alice"],
    ).stdout.strip()
    listing = site4.mesh.cli(
        "jobs", "--node", n[3].release, *ca, "--user", "alice", "--password-file", str(password)
    ).stdout
    assert job_id in listing and "letter.txt" in listing
    assert "HELD ON" in listing and "COPIES" not in listing  # copies held, not print copies
    assert "1 copy, one-sided, colour" in listing
    assert "PAGES" in listing  # "-" until intake counts them
    shown = site4.mesh.cli(
        "job", "show", job_id, "--node", n[3].release, *ca, "--user", "alice",
        "--password-file", str(password),
    ).stdout  # fmt: skip
    assert "held on: " in shown and "prints:  1 copy, one-sided, colour (as sent)" in shown
    assert "state:   held" in shown
    jobs = ["jobs", *ca, "--user", "alice", "--password-file", str(password)]
    wrong = site4.mesh.cli(*jobs, "--node", n[3].submit, check=False)
    assert wrong.returncode == 1 and "release API" in wrong.stderr, wrong.stderr
    out = tmp_path / "out.txt"
    release = [
        "release",
        job_id,
        "--node",
        f"https://{n[0].release}",
        *ca,
        "--user",
        "alice",
        "--password-file",
        str(password),
        "--to",
        str(out),
    ]
    site4.mesh.cli(*release)
    assert out.read_bytes() == doc.read_bytes()
    bad = site4.mesh.cli(*release, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "no job" in bad.stderr
    status = site4.mesh.cli("status", "--node", n[1].release, *ca).stdout
    assert "up" in status and "(controller)" in status
    assert f"heard from in the last {LIVE_WINDOW:.0f} s" in status  # how fresh the view is
