"""The local intake door: how the CUPS backend hands a job to the node on the same machine
"on behalf of" the job's user, with no user password or token.

The node keeps a random intake secret in DATA/intake.json (mode 0600, owned by the
node's account, with the port to call) and accepts `POST /v1/intake` on its submit API
only when the request comes from a loopback address *and* carries that secret. The
backend runs as root (mode 0700 in CUPS' backend directory), reads the file and streams
the document in.
From the network the door cannot be used: the address check refuses it before the
secret is looked at, and the secret never leaves the machine.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from appliance.datadir import DataDir
from appliance.endpoint import Endpoint
from appliance.errors import ConfigError, Forbidden, Unauthorized

log = logging.getLogger(__name__)
INTAKE_FILE = "intake.json"


@dataclass(frozen=True)
class DoorConfig:
    """What the backend needs to call the local node."""

    host: str
    port: int
    secret: str
    ca: Path


def _path(data: DataDir) -> Path:
    return data.root / INTAKE_FILE


def prepare(data: DataDir, endpoint: Endpoint) -> str:
    """At node start: keep (or make) the intake secret and record the submit port the
    backend must call. Returns the secret."""
    path = _path(data)
    secret = ""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        secret = str(json.loads(path.read_text()).get("secret", ""))
    if len(secret) < 32:
        secret = secrets.token_urlsafe(32)
    if endpoint.bind not in ("0.0.0.0", "::", "") and not is_loopback(endpoint.bind):
        log.warning(
            "the submit API listens on %s only: the Secure Print backend cannot reach it "
            "over loopback",
            endpoint.bind,
        )
    record = {"host": "127.0.0.1", "port": endpoint.submit_port, "secret": secret}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
        out.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return secret


def load(data: DataDir) -> DoorConfig:
    """The backend's side: where the local node takes intake, and the secret."""
    path = _path(data)
    try:
        record = json.loads(path.read_text())
        return DoorConfig(
            str(record["host"]), int(record["port"]), str(record["secret"]), data.ca_cert
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist: is the meshprint node on this machine set up and "
            "started (it writes that file when it starts)?"
        ) from None
    except PermissionError:
        raise ConfigError(f"cannot read {path}: the backend must run as root") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is damaged ({err})") from None


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_caller(secret: str, client_host: str, given: str) -> None:
    """`POST /v1/intake` only from this machine, and only with the secret of its node."""
    if not is_loopback(client_host):
        raise Forbidden("intake on behalf of a user is only accepted from this machine")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Unauthorized("wrong intake secret (read it from the node's intake.json)")
