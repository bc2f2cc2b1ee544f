"""appliance.mqtt.topics and the broker configuration: names, who may publish, the ACL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509

from appliance.errors import BadRequest, ConfigError
from appliance.mqtt import broker, topics
from appliance.site.ca import SiteCA, common_name, load_cert

SITE = "s0123abcd"


def test_topic_names_and_parsing() -> None:
    topic = topics.node_topic(SITE, "n1", topics.PRESENCE)
    assert topic == "meshprint/s0123abcd/node/n1/presence"
    assert topics.parse(topic) == (SITE, "n1", "presence")
    assert topics.site_filter(SITE, topics.COMMAND) == "meshprint/s0123abcd/node/+/cmd"
    assert topics.parse("meshprint/s/node/n1/other") is None
    assert topics.parse("elsewhere/s/node/n1/cmd") is None


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 65, "a b"])
def test_ids_that_would_change_the_topic_are_refused(bad: str) -> None:
    with pytest.raises(BadRequest, match="topic"):
        topics.node_topic(SITE, bad, topics.EVENTS)


def test_only_the_controller_commands_and_nodes_publish_only_their_own_topics() -> None:
    def may(client: str, node: str, kind: str) -> bool:
        return topics.may_publish(SITE, client, "ctl", topics.node_topic(SITE, node, kind))

    assert may("n1", "n1", topics.EVENTS) and may("n1", "n1", topics.PRESENCE)
    assert not may("n1", "n2", topics.EVENTS)
    assert not may("n1", "n1", topics.COMMAND) and not may("n1", "n2", topics.COMMAND)
    assert may("ctl", "n2", topics.COMMAND)
    assert not topics.may_publish("other", "ctl", "ctl", topics.node_topic(SITE, "n2", "cmd"))


def test_acl_file_says_the_same() -> None:
    acl = topics.acl_rules(SITE, "ctl").splitlines()
    prefix = f"meshprint/{SITE}/node"
    assert f"pattern write {prefix}/%u/events" in acl
    assert f"pattern read {prefix}/%u/cmd" in acl
    assert not any(line.startswith("pattern write") and "cmd" in line for line in acl)
    at = acl.index("user ctl")
    assert acl[at + 1] == f"topic write {prefix}/+/cmd"


def test_broker_config_files(tmp_path: Path, ca: SiteCA) -> None:
    config = broker.BrokerConfig(SITE, "ctl", tmp_path / "b", 18883, "127.0.0.1", ("10.0.0.5",))
    broker.write(config, ca)
    conf = config.conf.read_text()
    for line in (
        "listener 18883 127.0.0.1",
        "require_certificate true",
        "use_identity_as_username true",
        "set_tcp_nodelay true",
        "allow_anonymous false",
        f"acl_file {config.acl}",
        "persistence true",
    ):
        assert line in conf.splitlines()
    assert "connection " not in conf  # no bridge unless asked
    assert os.stat(config.key).st_mode & 0o077 == 0
    cert = load_cert(config.cert)
    ca.verify(cert.tbs_certificate_bytes, cert.signature)
    assert common_name(cert) == broker.BROKER_NAME
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {
        "10.0.0.5",
        "127.0.0.1",
    }


def test_only_the_controller_writes_a_broker_config(tmp_path: Path, ca: SiteCA) -> None:
    public = SiteCA(ca.cert, None)
    with pytest.raises(ConfigError, match="controller"):
        broker.write(broker.BrokerConfig(SITE, "ctl", tmp_path), public)


def test_bridge_maps_commands_in_and_telemetry_out(tmp_path: Path, ca: SiteCA) -> None:
    (tmp_path / "up-ca.pem").write_text("ca")
    up = broker.Upstream.from_url(
        "mqtts://fleet.example:8884", ca=str(tmp_path / "up-ca.pem"), prefix="fleet/o1/"
    )
    config = broker.BrokerConfig(SITE, "ctl", tmp_path / "b", upstream=up)
    broker.write(config, ca)
    conf = config.conf.read_text().splitlines()
    assert "address fleet.example:8884" in conf
    assert f"topic node/+/cmd in 1 meshprint/{SITE}/ fleet/o1/" in conf
    assert f"topic node/+/presence out 1 meshprint/{SITE}/ fleet/o1/" in conf
    assert f"bridge_cafile {config.out / 'upstream-ca.pem'}" in conf


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("mqtt://plain:1883", {"ca": "x"}, "TLS"),
        ("mqtts://h", {}, "--upstream-ca"),
        ("mqtts://h", {"ca": "/nonexistent"}, "does not exist"),
        ("mqtts://h", {"ca": "CA", "prefix": "no-slash"}, "ending in '/'"),
        ("mqtts://h", {"ca": "CA", "prefix": "a/#/"}, "wildcards"),
    ],
)
def test_bad_upstream_options(
    tmp_path: Path, url: str, options: dict[str, str], message: str
) -> None:
    (tmp_path / "ca.pem").write_text("ca")
    options = {k: str(tmp_path / "ca.pem") if v == "CA" else v for k, v in options.items()}
    with pytest.raises(ConfigError, match=message):
        broker.Upstream.from_url(url, **options)


def test_broker_address_from_the_directory() -> None:
    assert broker.address({}) is None
    assert broker.address({"broker": {"host": "10.0.0.5"}}) == broker.BrokerAddress("10.0.0.5")
    assert broker.address({"broker": {"host": "h", "port": 1}}) == broker.BrokerAddress("h", 1)


def test_removed_members_are_on_the_brokers_revocation_list(tmp_path: Path, ca: SiteCA) -> None:
    config = broker.BrokerConfig(SITE, "ctl", tmp_path / "b", revoked=("1f", "abc123"))
    broker.write(config, ca)
    assert f"crlfile {config.crl}" in config.conf.read_text().splitlines()
    crl = x509.load_pem_x509_crl(config.crl.read_bytes())
    assert crl.is_signature_valid(ca.cert.public_key())  # type: ignore[arg-type]
    assert {r.serial_number for r in crl} == {0x1F, 0xABC123}
    assert crl.next_update_utc == ca.cert.not_valid_after_utc  # never locks the site out
