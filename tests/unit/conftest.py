"""Shared fixtures for unit tests: a real temporary SQLite database, job store and site CA."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

from appliance.datadir import DataDir
from appliance.site import authority
from appliance.site.authority import RecoveryKey
from appliance.site.ca import SiteCA, new_key
from appliance.site.directory import Directory, NodeRecord
from appliance.site.enroll import create_site
from appliance.site.state import SiteState, open_site
from appliance.store.db import Database
from appliance.store.jobs import Holder, Job, JobStore, new_job_id

SITE_ID = "site-test-0001"

# No per-example deadline: timing on a loaded CI machine is not what these tests are about.
# (Hypothesis keeps its example database in .hypothesis/, which ignores itself for git.)
settings.register_profile("unit", deadline=None)
settings.load_profile("unit")

JobFactory = Callable[..., Job]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "node.db")


@pytest.fixture
def store(tmp_path: Path, db: Database) -> JobStore:
    return JobStore(tmp_path, db)


@pytest.fixture(scope="session")
def ca() -> SiteCA:
    return SiteCA.create("test")


@pytest.fixture(scope="session")
def other_ca() -> SiteCA:
    return SiteCA.create("elsewhere")


@pytest.fixture(scope="session")
def controller(ca: SiteCA) -> NodeRecord:
    cert = ca.issue(new_key().public_key(), "n-controller", ["127.0.0.1"])
    return NodeRecord(
        id="n-controller",
        name="controller",
        role="super",
        cert_serial=format(cert.serial_number, "x"),
        machine_id="machine-a",
        host="127.0.0.1",
        peer_port=7001,
        submit_port=7002,
        release_port=7003,
    )


@pytest.fixture
def directory(ca: SiteCA, controller: NodeRecord) -> Directory:
    return Directory.create(ca, SITE_ID, "Test office", controller)


@pytest.fixture
def make_job() -> JobFactory:
    """Build a Job row for the store; `sealed_size` defaults to 100."""

    def make(job_id: str | None = None, sealed_size: int = 100, **overrides: object) -> Job:
        now = time.time()
        fields: dict[str, object] = {
            "id": job_id or new_job_id(),
            "owner": "alice",
            "title": "report.pdf",
            "size": max(0, sealed_size - 24),
            "sealed_size": sealed_size,
            "created_at": now,
            "expires_at": now + 3600,
            "holders": [Holder("n1", 1), Holder("n2", 2), Holder("n3", 3)],
            "holders_version": 1,
            "share_x": 1,
            "share": b"\x01" * 32,
            "user_share": b"\x02" * 80,
        }
        fields.update(overrides)
        return Job(**fields)  # type: ignore[arg-type]

    return make


def new_controller(root: Path, name: str = "Office") -> tuple[DataDir, SiteState, str]:
    """A new site's controller data directory, its state with the site authority
    unlocked by the recovery key (as an administrator acting), and that key."""
    data = DataDir(root)
    created = create_site(data, name)
    site = open_site(data)[1]
    authority.unlock(data, site, RecoveryKey(created.recovery_key))
    return data, site, created.recovery_key
