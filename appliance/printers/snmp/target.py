"""Where and how to ask a printer: address, v2c community or SNMPv3 USM credentials,
timeout and retries, validated when made (BadRequest with what is wrong)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.errors import BadRequest
from appliance.hostname import check_host
from appliance.printers.errors import PrinterUnreachable
from appliance.printers.snmp.mib import AUTH_PROTOCOLS, PRIV_PROTOCOLS


class SnmpSettings(Protocol):
    """An SNMP address and credentials as a printer's registry entry keeps them."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def community(self) -> str | None: ...
    @property
    def v3_user(self) -> str | None: ...
    @property
    def v3_auth_key(self) -> str | None: ...
    @property
    def v3_priv_key(self) -> str | None: ...


@dataclass(frozen=True)
class SnmpV3User:
    """SNMPv3 USM credentials. No auth key: noAuthNoPriv; auth key only: authNoPriv."""

    user: str
    auth_key: str | None = None
    priv_key: str | None = None
    auth_protocol: str = "sha"  # md5, sha, sha224, sha256, sha384, sha512
    priv_protocol: str = "aes"  # des, 3des, aes (aes128), aes192, aes256
    context: str = ""  # SNMPv3 context name; printers use the empty one

    def __post_init__(self) -> None:
        if not self.user or len(self.user) > 32:
            raise BadRequest("an SNMPv3 user name is 1-32 characters")
        for what, key in (("authentication", self.auth_key), ("privacy", self.priv_key)):
            if key is not None and len(key) < 8:
                raise BadRequest(f"the SNMPv3 {what} key must be at least 8 characters")
        if self.priv_key and not self.auth_key:
            raise BadRequest("SNMPv3 privacy (encryption) needs an authentication key too")
        if self.auth_protocol.lower() not in AUTH_PROTOCOLS:
            raise BadRequest(
                f"unknown SNMPv3 authentication protocol {self.auth_protocol!r}: "
                f"use one of {', '.join(AUTH_PROTOCOLS)}"
            )
        if self.priv_protocol.lower() not in PRIV_PROTOCOLS:
            raise BadRequest(
                f"unknown SNMPv3 privacy protocol {self.priv_protocol!r}: "
                f"use one of {', '.join(PRIV_PROTOCOLS)}"
            )

    def __repr__(self) -> str:  # keep keys out of logs
        return (
            f"SnmpV3User(user={self.user!r}, auth={self.auth_protocol}, priv={self.priv_protocol})"
        )


@dataclass(frozen=True)
class SnmpTarget:
    """Where and how to ask a printer. Community "public" unless a community or v3 is given.

    `timeout` is per request in seconds; `retries` is how many times a request is re-sent,
    so a dead address answers PrinterUnreachable after about timeout * (retries + 1).
    """

    host: str
    port: int = 161
    community: str | None = None
    v3: SnmpV3User | None = None
    timeout: float = 1.0
    retries: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise BadRequest("an SNMP target needs a host name or IP address")
        host = self.host.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        object.__setattr__(self, "host", check_host(host))
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise BadRequest(f"the SNMP port must be a number, not {self.port!r}")
        if not 0 < self.port < 65536:
            raise BadRequest(f"the SNMP port must be 1-65535, not {self.port}")
        if self.community is not None and self.v3 is not None:
            raise BadRequest("give either an SNMP community (v2c) or SNMPv3 credentials, not both")
        if self.community is not None and not 0 < len(self.community) <= 255:
            raise BadRequest("an SNMP community is 1-255 characters")
        if self.community is None and self.v3 is None:
            object.__setattr__(self, "community", "public")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float):
            raise BadRequest(f"the SNMP timeout must be a number of seconds, not {self.timeout!r}")
        if not 0.05 <= self.timeout <= 60:
            raise BadRequest("the SNMP timeout must be between 0.05 and 60 seconds")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise BadRequest(f"SNMP retries must be a whole number, not {self.retries!r}")
        if not 0 <= self.retries <= 10:
            raise BadRequest("SNMP retries must be between 0 and 10")

    def __repr__(self) -> str:  # keep the community out of logs
        auth = f"v3 {self.v3.user}" if self.v3 else "v2c"
        return f"SnmpTarget({self.address}, {auth}, timeout={self.timeout}, retries={self.retries})"

    @classmethod
    def from_config(
        cls, config: SnmpSettings, timeout: float = 1.0, retries: int = 1
    ) -> SnmpTarget:
        """The target of a printer's registry entry (v3 keys there use SHA and AES)."""
        v3 = None
        if config.v3_user:
            v3 = SnmpV3User(config.v3_user, config.v3_auth_key, config.v3_priv_key)
        community = None if v3 else (config.community or "public")
        return cls(config.host, config.port, community, v3, timeout, retries)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def budget(self) -> float:
        """The longest one request can take before pysnmp reports a timeout."""
        return self.timeout * (self.retries + 1)

    def no_answer(self) -> PrinterUnreachable:
        return PrinterUnreachable(
            f"no SNMP answer from {self.address} within {_seconds(self.timeout)} s — "
            "is the printer on? (community/credentials right?)"
        )


def check_target(target: SnmpTarget) -> None:
    if not isinstance(target, SnmpTarget):
        raise BadRequest(f"expected an SnmpTarget, got {type(target).__name__}")


def _seconds(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"
