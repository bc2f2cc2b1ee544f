"""The site broker: Mosquitto's configuration, ACL and certificate, an optional bridge to
an upstream broker, and where the nodes find it.

The broker's address lives in the signed site directory (`doc["broker"]`, set by
`meshprint broker config` on the controller), so every node, super or edge, learns it
the way it learns everything else: from its next sync. A node starts its agent when the
directory names a broker, and stops it when the entry goes.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from appliance.errors import ConfigError
from appliance.mqtt import topics
from appliance.site.ca import SiteCA, cert_pem, key_pem, new_key, write_private

DEFAULT_PORT = 8883
BROKER_NAME = "meshprint-broker"  # the broker certificate's common name
MOSQUITTO_USER = "mosquitto"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}


def address(doc: dict[str, Any]) -> BrokerAddress | None:
    """The site broker named in a directory document, if any."""
    entry = doc.get("broker")
    if not isinstance(entry, dict) or not entry.get("host"):
        return None
    return BrokerAddress(str(entry["host"]), int(entry.get("port", DEFAULT_PORT)))


@dataclass(frozen=True)
class Upstream:
    """A bridge to an upstream broker (TLS only)."""

    host: str
    port: int
    ca: Path
    cert: Path | None = None
    key: Path | None = None
    username: str | None = None
    password: str | None = None
    prefix: str | None = None  # remote topic prefix; default: the site's own prefix

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Upstream:
        parts = urlsplit(url if "://" in url else f"mqtts://{url}")
        if parts.scheme != "mqtts" or not parts.hostname:
            raise ConfigError(f"--upstream must be mqtts://HOST[:PORT] (TLS), not {url!r}")
        ca = options.get("ca")
        if ca is None:
            raise ConfigError("give the upstream broker's CA certificate with --upstream-ca FILE")
        for name in ("ca", "cert", "key"):
            path = options.get(name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"--upstream-{name} {path} does not exist")
        if bool(options.get("cert")) != bool(options.get("key")):
            raise ConfigError("give --upstream-cert and --upstream-key together")
        prefix = options.get("prefix")
        if prefix is not None and (not prefix.endswith("/") or "+" in prefix or "#" in prefix):
            raise ConfigError("--upstream-prefix is a topic prefix ending in '/', no wildcards")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORT,
            ca=Path(ca),
            cert=Path(options["cert"]) if options.get("cert") else None,
            key=Path(options["key"]) if options.get("key") else None,
            username=options.get("username"),
            password=options.get("password"),
            prefix=prefix,
        )


@dataclass(frozen=True)
class BrokerConfig:
    site_id: str
    controller: str
    out: Path
    port: int = DEFAULT_PORT
    bind: str = "0.0.0.0"
    hosts: tuple[str, ...] = ()
    upstream: Upstream | None = None
    revoked: tuple[str, ...] = ()  # certificate serials (hex) of removed members

    conf = property(lambda self: self.out / "mosquitto.conf")
    acl = property(lambda self: self.out / "acl")
    ca = property(lambda self: self.out / "ca.pem")
    cert = property(lambda self: self.out / "broker.pem")
    key = property(lambda self: self.out / "broker.key")
    crl = property(lambda self: self.out / "crl.pem")
    log = property(lambda self: self.out / "mosquitto.log")
    store = property(lambda self: self.out / "data")


def write(config: BrokerConfig, ca: SiteCA) -> list[Path]:
    """Write everything Mosquitto needs into `config.out`; returns the files written."""
    if ca.key is None:
        raise ConfigError("the broker's certificate is issued on the site controller")
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    config.store.mkdir(exist_ok=True)
    key = new_key()
    hosts = [h for h in (*config.hosts, "127.0.0.1") if h not in ("0.0.0.0", "::", "")]
    cert = ca.issue(key.public_key(), BROKER_NAME, list(dict.fromkeys(hosts)))
    write_private(config.key, key_pem(key))
    config.cert.write_bytes(cert_pem(cert) + cert_pem(ca.cert))
    config.ca.write_bytes(cert_pem(ca.cert))
    config.acl.write_text(topics.acl_rules(config.site_id, config.controller))
    config.crl.write_bytes(revocation_list(ca, config.revoked))
    written = [config.conf, config.acl, config.ca, config.crl, config.cert, config.key]
    bridge = ""
    if config.upstream is not None:
        bridge, copied = _bridge(config, config.upstream)
        written += copied
    config.conf.write_text(_conf(config) + bridge)
    config.log.touch()
    _give_to_mosquitto(config)
    return written


def revocation_list(ca: SiteCA, serials: tuple[str, ...]) -> bytes:
    """A CRL of the removed members' certificates, valid as long as the CA (an expired CRL
    would lock every node out), so the broker refuses them at the handshake."""
    assert ca.key is not None
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(ca.cert.not_valid_after_utc)
    )
    for serial in sorted(serials):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(now - dt.timedelta(minutes=5))
            .build()
        )
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def _conf(c: BrokerConfig) -> str:
    return f"""# meshprint site broker, written by `meshprint broker config` (run it again)
per_listener_settings false
allow_anonymous false
acl_file {c.acl}
persistence true
persistence_location {c.store}/
autosave_interval 10
log_dest file {c.log}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
set_tcp_nodelay true
max_queued_messages 10000

# TLS only; every client shows a certificate from the site CA, and its common name (the
# node id) is its user name for the ACL.
listener {c.port} {c.bind}
cafile {c.ca}
crlfile {c.crl}
certfile {c.cert}
keyfile {c.key}
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
"""


def _bridge(c: BrokerConfig, up: Upstream) -> tuple[str, list[Path]]:
    """A bridge: release commands come in from upstream, presence/events/printers go out."""
    local = topics.site_prefix(c.site_id)
    remote = up.prefix or local
    copied = []
    lines = [
        "",
        "# Bridge to the upstream broker: commands published there under the remote prefix",
        "# reach this site's nodes (each still checks the controller's signature).",
        "connection meshprint-upstream",
        f"address {up.host}:{up.port}",
        f"remote_clientid meshprint-{c.site_id}",
        "bridge_protocol_version mqttv311",
        "cleansession false",
        "notifications false",
        "restart_timeout 2 30",
    ]
    for name, source in (("ca", up.ca), ("cert", up.cert), ("key", up.key)):
        if source is None:
            continue
        target = c.out / f"upstream-{name}.pem"
        if name == "key":
            write_private(target, source.read_bytes())
        else:
            shutil.copyfile(source, target)
        copied.append(target)
        lines.append(f"bridge_{name}file {target}")
    if up.username:
        lines.append(f"remote_username {up.username}")
    if up.password:
        lines.append(f"remote_password {up.password}")
        os.chmod(c.conf.parent, 0o750)
    lines.append(f"topic node/+/{topics.COMMAND} in 1 {local} {remote}")
    for kind in topics.NODE_KINDS:
        lines.append(f"topic node/+/{kind} out 1 {local} {remote}")
    return "\n".join(lines) + "\n", copied


def _give_to_mosquitto(c: BrokerConfig) -> None:
    """Mosquitto started as root drops to its own user before reading its key and writing
    its log and store: hand those over (no-op when not root or without that user)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return
    for path in [c.out, c.key, c.log, c.store, *c.store.iterdir(), *c.out.glob("upstream-*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(c.conf, 0o640)
    os.chown(c.conf, 0, user.pw_gid)
