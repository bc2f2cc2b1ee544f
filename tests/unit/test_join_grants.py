"""site/grants.py: an invite seals the CA key under the token's secret, so the
controller admits the invited node with what the token opens, not with the CA key it
keeps; the copy is erased when the token is spent or expires, and the database alone
(a stolen disk) opens nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import Gone, Unauthorized
from appliance.site import admin, enroll, grants
from appliance.site.ca import SiteCA, csr_for, load_cert, load_key, new_key
from appliance.site.state import SiteState
from appliance.site.tokens import JoinToken
from tests.unit.conftest import new_controller

ADDRESS = {"host": "127.0.0.1", "peer_port": 7001, "submit_port": 7002, "release_port": 7003}


@pytest.fixture
def site(tmp_path: Path) -> tuple[DataDir, SiteState]:
    data = DataDir(tmp_path / "ctl")
    _, state, _ = new_controller(data.root)
    node_id = state.directory().controller_id
    state.announce(node_id, load_cert(data.node_cert), load_key(data.node_key), ADDRESS)
    return data, state


def without_ca_key(site: SiteState) -> SiteState:
    """The controller's state as it would be with its CA key out of reach."""
    return SiteState(site.db, SiteCA(site.ca.cert, None), site.site_id)


def request(token: JoinToken, node_id: str = "n0123456789ab") -> dict[str, object]:
    csr = csr_for(new_key(), node_id).decode()
    return {"token": token.encode(), "node_id": node_id, "role": "edge", "csr": csr}


def stored_grants(site: SiteState) -> list[object]:
    return [r["join_grant"] for r in site.db.query("SELECT join_grant FROM join_tokens")]


def test_an_invited_node_is_admitted_with_the_grant_alone(
    site: tuple[DataDir, SiteState],
) -> None:
    data, state = site
    token = admin.invite(data, state, 600)
    assert stored_grants(state) != [None]
    answer = enroll.admit(without_ca_key(state), request(token))
    directory = state.directory()
    assert directory.node("n0123456789ab") is not None
    assert directory.version == int(answer["directory_version"])  # type: ignore[call-overload]
    assert stored_grants(state) == [None]  # erased with the token spent
    with pytest.raises(Gone):
        enroll.admit(without_ca_key(state), request(token, "n0123456789ac"))


def test_the_database_alone_opens_no_grant(site: tuple[DataDir, SiteState]) -> None:
    data, state = site
    token = admin.invite(data, state, 600)
    stored = stored_grants(state)[0]
    assert isinstance(stored, str)
    guess = JoinToken.new(state.site_id, "x:1", state.ca.fingerprint, time.time()).secret
    with pytest.raises(Unauthorized):
        grants.open_grant(stored, guess, state.ca, state.site_id)
    opened = grants.open_grant(stored, token.secret, state.ca, state.site_id)
    assert opened.key is not None and opened.key.public_key() == state.ca.public_key


def test_an_expired_token_s_grant_is_erased(site: tuple[DataDir, SiteState]) -> None:
    data, state = site
    token = admin.invite(data, state, 600)
    with state.db.transaction() as conn:
        conn.execute("UPDATE join_tokens SET expires_at=?", (time.time() - 1,))
    with pytest.raises(Gone, match="expired"):
        enroll.admit(without_ca_key(state), request(token))
    assert stored_grants(state) == [None]
    assert state.directory().node("n0123456789ab") is None


def test_a_spent_grant_leaves_no_copy_in_the_database_file(
    site: tuple[DataDir, SiteState],
) -> None:
    data, state = site
    token = admin.invite(data, state, 600)
    stored = stored_grants(state)[0]
    assert isinstance(stored, str)
    sealed = json.loads(stored)["sealed"].encode()
    files = [data.db, *(data.db.with_name(data.db.name + end) for end in ("-wal", "-shm"))]

    def on_disk() -> bool:
        state.db.query("PRAGMA wal_checkpoint(TRUNCATE)")
        return any(sealed in f.read_bytes() for f in files if f.exists())

    assert on_disk()  # what the test looks for is there to find
    enroll.admit(without_ca_key(state), request(token))
    assert not on_disk()
