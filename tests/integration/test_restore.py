"""The appliance is replaceable: a lost controller is rebuilt on a new node from a
surviving member and the recovery key (`appliance.site.restore`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from appliance.devtools.localmesh import HOST
from appliance.site import recovery
from tests.integration.conftest import Site, random_bytes, wait_for


def _key_file(root: Path, key: str) -> str:
    path = root / ".recovery-key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return str(path)


def test_lost_controller_is_restored_and_old_jobs_release(site3: Site) -> None:
    mesh = site3.mesh
    document = random_bytes(300_000)
    job = site3.submit(1, document)["id"]
    wait_for(lambda: set(site3.held_on(job)) == {0, 1, 2})
    lost_id = mesh.nodes[0].id
    mesh.kill(0)
    shutil.rmtree(mesh.nodes[0].data)

    new = mesh.add_node()
    wrong = _key_file(mesh.root, recovery.new_recovery_key())
    refused = mesh.cli(
        "site", "restore", "--data", str(new.data), "--from", mesh.nodes[1].submit,
        "--key-file", wrong, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "recovery key" in refused.stderr and "Traceback" not in refused.stderr
    assert not (new.data / "node.json").exists()

    key = _key_file(mesh.root, mesh.recovery_key.lower().replace("-", " "))  # as typed
    mesh.cli(
        "site", "restore", "--data", str(new.data), "--from", mesh.nodes[1].submit,
        "--key-file", key, "--host", HOST,
    )  # fmt: skip
    mesh.start(new.index)
    members = wait_for(
        lambda: (m := {x["id"] for x in mesh.status(1)["members"]}) and new.id in m and m,
        timeout=30,
    )
    assert lost_id not in members
    mesh.wait_directory()

    # The new controller administers the site: a user added there reaches the members.
    password = mesh.root / ".carol.password"
    password.write_text("ember-violin-333\n")
    mesh.cli("user", "add", "carol", "--data", str(new.data), "--password-file", str(password))
    mesh.wait_directory()
    assert "carol" in mesh.cli("user", "list", "--data", str(mesh.nodes[2].data)).stdout

    # The lost controller's copy is rebuilt on a live node; the owner still releases.
    wait_for(lambda: len(site3.held_on(job)) == 3 and 0 not in site3.held_on(job), 60)
    assert site3.release(new.index, job) == document


def test_the_recovery_copy_is_given_only_for_the_key(site3: Site) -> None:
    from appliance.errors import Unauthorized

    client = site3.mesh.client(1, "submit")
    error = site3.error(client.recovery, recovery.proof(recovery.new_recovery_key()))
    assert isinstance(error, Unauthorized)
    answer = client.recovery(recovery.proof(site3.mesh.recovery_key))
    assert "BEGIN CERTIFICATE" in answer["ca"]
