"""Sign-in on a real node's /v1 release API: rate-limited per account and per address,
at most a few KDF runs at once (others wait briefly, then 503 + Retry-After), bounded
memory under a storm while a normal client is still served; and an old scrypt-wrapped
key upgraded to Argon2id at a sign-in through the controller (only there)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto.userkeys import ARGON2_COST, b64, public_bytes
from appliance.datadir import DataDir
from appliance.devtools.signinstorm import Answer, Storm, loopback_sources, sign_in, watching
from appliance.site import authority
from appliance.site.authority import RecoveryKey
from appliance.site.state import open_site
from appliance.site.tls import client_context
from tests.fixtures.legacy_keys import scrypt_wrapped
from tests.integration.conftest import PASSWORDS, Site, make_site

pytestmark = pytest.mark.integration
HOST = "127.0.0.1"
NORMAL_ADDRESS = "127.0.200.7"  # the normal client: in none of the storm's addresses
ONE_ADDRESS = "127.0.5.2"  # a third of the storm from one address
STORM_GROWTH_LIMIT = 250 * 2**20


@pytest.fixture(scope="module")
def site2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A controller (node 0) and one member (node 1)."""
    yield from make_site(tmp_path_factory.mktemp("signin"), 2)


def signed_in(site: Site, index: int, user: str, password: str, source: str) -> Answer:
    context = client_context(site.mesh.ca)
    return sign_in(HOST, site.mesh.nodes[index].release_port, context, user, password, source)


def test_wrong_passwords_are_limited_per_account_and_per_address(site2: Site) -> None:
    site2.mesh.add_user("carol", "ember-violin-3")
    seen = [signed_in(site2, 0, "carol", f"guess-{i}", f"127.0.3.{i + 2}") for i in range(7)]
    assert [a.status for a in seen] == [401] * 5 + [429] * 2
    assert seen[-1].retry_after is not None and 0 < int(seen[-1].retry_after) <= 300
    # now even carol's own password waits out the window: the guesses came first
    assert signed_in(site2, 0, "carol", "ember-violin-3", "127.0.3.50").status == 429
    # spraying: one address, many accounts
    sprayed = [signed_in(site2, 0, f"user{i}", "some-guess-1", "127.0.4.2") for i in range(7)]
    assert [a.status for a in sprayed] == [401] * 5 + [429] * 2
    # another user, from another address, is not affected by either
    assert signed_in(site2, 0, "bob", PASSWORDS["bob"], NORMAL_ADDRESS).status == 200


def test_a_storm_of_bad_sign_ins_is_bounded_and_a_normal_client_is_served(site2: Site) -> None:
    node = site2.mesh.nodes[0]
    assert node.process is not None
    normal = signed_in(site2, 0, "bob", PASSWORDS["bob"], NORMAL_ADDRESS)
    assert normal.status == 200  # warm: the node has done a KDF run and served bob
    # 240 at once: 120 from one address (at most 5 wrong passwords are checked, the rest
    # refused: 429, or 503 while the KDF gate is full) and 3 from each of 40 others (all
    # let in: the KDF gate runs 2, queues 8, refuses the rest: 503)
    sources = loopback_sources(40, 300) + [ONE_ADDRESS] * 40
    storm = Storm(HOST, node.release_port, site2.mesh.ca, sources, 3)
    served: list[Answer] = []

    def normal_client() -> None:
        time.sleep(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = signed_in(site2, 0, "bob", PASSWORDS["bob"], NORMAL_ADDRESS)
            served.append(answer)
            if answer.status != 503:
                return
            time.sleep(float(answer.retry_after or 1))

    thread = threading.Thread(target=normal_client)
    with watching(node.process.pid) as memory:
        thread.start()
        counts = storm.run()
        thread.join()
    assert sum(counts.values()) == 240
    # 0: closed unanswered by the server's connection caps (64 open per address), another
    # bound; every answer is a refusal, none a 500
    assert set(counts) <= {0, 401, 429, 503}, counts
    assert counts[503] >= 40, counts
    # a refusal at the KDF gate checks no password, so it costs the address nothing; a
    # wrong password that was checked does: the one address had at most 5 checked
    from_one = Counter(a.status for a in storm.answers if a.source == ONE_ADDRESS)
    assert sum(from_one.values()) == 120 and from_one[401] <= 5, from_one
    assert from_one[429] + from_one[503] + from_one[0] >= 115, from_one
    assert all(a.retry_after for a in storm.answers if a.status in (429, 503))
    assert memory.growth < STORM_GROWTH_LIMIT, (memory.idle, memory.peak)
    assert served and served[-1].status == 200, served
    assert len(served) <= 3, served  # at most a couple of Retry-After waits
    # and the node is fine afterwards
    assert signed_in(site2, 0, "bob", PASSWORDS["bob"], NORMAL_ADDRESS).status == 200


def _record(data: Path, user: str) -> dict[str, Any]:
    record = open_site(DataDir(data))[1].directory().user(user)
    assert record is not None
    return record.wrapped_key


def test_a_scrypt_era_key_is_upgraded_at_sign_in_on_the_controller(site2: Site) -> None:
    mesh = site2.mesh
    controller, member = mesh.nodes[0], mesh.nodes[1]
    token = mesh.add_user("dave", "walnut-comet-58")
    private = X25519PrivateKey.generate()
    old = scrypt_wrapped(private, "walnut-comet-58")

    def to_scrypt(doc: dict[str, Any]) -> None:  # as a directory from before Argon2id has it
        doc["users"]["dave"].update(public_key=b64(public_bytes(private)), wrapped_key=old)

    state = open_site(DataDir(controller.data))[1]
    authority.unlock(DataDir(controller.data), state, RecoveryKey(mesh.recovery_key))
    state.edit(to_scrypt)
    mesh.wait_directory()
    job = site2.submit(1, b"sealed to dave's old-style key", user="dave", token=token)

    # a sign-in on a member opens it but cannot sign the directory: nothing changes
    assert (
        site2.release(1, job["id"], "dave", "walnut-comet-58") == b"sealed to dave's old-style key"
    )
    assert _record(controller.data, "dave") == old == _record(member.data, "dave")

    job = site2.submit(1, b"second document", user="dave", token=token)
    listed = mesh.client(0).jobs(("dave", "walnut-comet-58"))  # through the controller
    assert [j["id"] for j in listed] == [job["id"]]
    # queued there: the CA key is locked, so the next version an administrator signs
    # carries it (any change will do)
    assert _record(controller.data, "dave") == old
    site2.settings(retention="9h")
    upgraded = _record(controller.data, "dave")
    assert upgraded["kdf"] == "argon2id" and upgraded["m"] == ARGON2_COST["m"], upgraded
    mesh.wait_directory()
    assert _record(member.data, "dave") == upgraded  # passed on like any new version
    # same key pair: the job sealed before the upgrade opens with the same password
    assert site2.release(1, job["id"], "dave", "walnut-comet-58") == b"second document"
