"""Joining, mutual TLS on the peer port, revocation and directory propagation."""

from __future__ import annotations

import dataclasses
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest

from appliance.errors import RemoteError
from appliance.site.ca import SiteCA, cert_pem, key_pem, new_key
from appliance.site.tls import peer_client_context
from appliance.site.tokens import JoinToken
from tests.integration.conftest import Site, wait_for

pytestmark = pytest.mark.integration


def _invite(site: Site, *extra: str) -> str:
    return site.mesh.cli("invite", "--data", str(site.mesh.nodes[0].data), *extra).stdout.strip()


def test_join_tokens_are_one_time_and_expire(site3: Site, tmp_path: Path) -> None:
    token = _invite(site3)
    site3.mesh.cli("join", token, "--data", str(tmp_path / "first"))
    again = site3.mesh.cli("join", token, "--data", str(tmp_path / "second"), check=False)
    assert again.returncode == 1 and "already used" in again.stderr
    assert not (tmp_path / "second" / "node.json").exists()

    short = _invite(site3, "--ttl", "1s")
    time.sleep(1.5)
    late = site3.mesh.cli("join", short, "--data", str(tmp_path / "late"), check=False)
    assert late.returncode == 1 and "expired" in late.stderr

    garbage = site3.mesh.cli("join", "hello", "--data", str(tmp_path / "x"), check=False)
    assert garbage.returncode == 1 and "not a meshprint join token" in garbage.stderr
    assert "Traceback" not in garbage.stderr + late.stderr + again.stderr


def test_join_refuses_a_controller_with_another_ca(site3: Site, tmp_path: Path) -> None:
    token = JoinToken.decode(_invite(site3))
    forged = dataclasses.replace(token, ca="00" * 32).encode()
    result = site3.mesh.cli("join", forged, "--data", str(tmp_path / "n"), check=False)
    assert result.returncode == 1 and "fingerprint mismatch" in result.stderr


def _raw_peer_call(port: int, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /peer/health HTTP/1.1\r\nHost: x\r\n\r\n")
        return tls.recv(4096)


def test_peer_port_refuses_clients_without_a_member_certificate(
    site3: Site, tmp_path: Path
) -> None:
    port = site3.mesh.nodes[1].peer_port
    anonymous = ssl.create_default_context(cafile=str(site3.mesh.ca))
    anonymous.check_hostname = False
    assert _refused(port, anonymous)

    # A certificate from another CA, even with a member's node id, is refused too.
    other_ca = SiteCA.create("elsewhere")
    key = new_key()
    cert = other_ca.issue(key.public_key(), site3.mesh.nodes[2].id, ["127.0.0.1"])
    (tmp_path / "c.pem").write_bytes(cert_pem(cert))
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    foreign = peer_client_context(tmp_path / "c.pem", tmp_path / "k.pem", site3.mesh.ca)
    foreign.check_hostname = False
    assert _refused(port, foreign)
    # A member's own certificate gets an answer: the refusals above are about the certificate.
    tls = site3.mesh.nodes[2].data / "tls"
    member = peer_client_context(tls / "node.pem", tls / "node.key", tls / "ca.pem")
    member.check_hostname = False
    assert _raw_peer_call(port, member).startswith(b"HTTP/1.1 200")


def _refused(port: int, context: ssl.SSLContext) -> bool:
    """The server ends the handshake (TLS alert, reset or plain EOF) and serves nothing."""
    try:
        reply = _raw_peer_call(port, context)
    except (ssl.SSLError, ConnectionError):
        return True
    return reply == b""


def test_removed_node_is_revoked_everywhere(site3: Site) -> None:
    removed = site3.mesh.nodes[2]
    assert site3.peer(2, 1).health()["node"]
    result = site3.mesh.cli("member", "remove", removed.id, "--data", str(site3.mesh.nodes[0].data))
    assert "revoked" in result.stdout
    site3.mesh.kill(2)  # it no longer gets the directory; the others must refuse it
    site3.mesh.wait_directory()

    def refused() -> bool:
        try:
            site3.peer(2, 1).health()
        except RemoteError as err:
            return err.status == 403 and "not a current member" in str(err)
        return False

    wait_for(refused)
    members = {m["id"] for m in site3.mesh.status(1)["members"]}
    assert removed.id not in members
    # New jobs no longer go to it.
    receipt = site3.submit(0, b"after the removal")
    assert removed.id not in receipt["holders"]


def test_directory_reaches_a_node_that_was_off(site3: Site) -> None:
    site3.mesh.kill(2, signal.SIGTERM)
    token = site3.mesh.add_user("carol", "ember-violin-3")
    site3.mesh.start(2)
    site3.mesh.wait_directory()
    receipt = site3.submit(2, b"carol's first job", user="carol", token=token)
    assert receipt["owner"] == "carol"
