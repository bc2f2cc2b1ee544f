"""Printer status over SNMP (v2c community or v3 USM), for a preflight before a job is sent.

Reads the Host Resources MIB (RFC 2790: hrDeviceStatus, hrPrinterStatus,
hrPrinterDetectedErrorState) and the Printer MIB (RFC 3805: page counter, marker
supplies, alerts) and says in plain words why a job must not be sent now, if it must not.

pysnmp 7 only has an asyncio API, and an SnmpEngine is bound to the event loop it first
ran on; a fresh engine costs ~0.3 s before its first answer, then ~2 ms per request. The
node is threaded (one thread per HTTP request), so every call here goes through one private
event loop in a daemon thread that owns one shared SnmpEngine: the functions are blocking,
safe to call from any thread, and only the first request of the process pays the warm-up.
pysnmp is imported on first use, so decoding (`decode_status`) works without it.
"""

from __future__ import annotations

import asyncio
import atexit
import ipaddress
import math
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from appliance.errors import BadRequest
from appliance.printers.errors import PrinterNotReady, PrinterUnreachable
from appliance.printers.registry import check_host

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    from appliance.printers.registry import SnmpConfig

T = TypeVar("T")

# A value as read from the agent: INTEGER/Counter/Gauge -> int, OCTET STRING -> bytes,
# OBJECT IDENTIFIER -> dotted str. Missing objects are left out of the mapping.
Value = int | bytes | str

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
HR_DEVICE_TYPE = "1.3.6.1.2.1.25.3.2.1.2.1"
HR_DEVICE_DESCR = "1.3.6.1.2.1.25.3.2.1.3.1"
HR_DEVICE_STATUS = "1.3.6.1.2.1.25.3.2.1.5.1"
HR_PRINTER_STATUS = "1.3.6.1.2.1.25.3.5.1.1.1"
HR_PRINTER_ERROR_STATE = "1.3.6.1.2.1.25.3.5.1.2.1"
PRT_MARKER_LIFE_COUNT = "1.3.6.1.2.1.43.10.2.1.4.1.1"
HR_DEVICE_PRINTER = "1.3.6.1.2.1.25.3.1.5"  # hrDeviceType value of a printer

SUPPLY_CLASS = "1.3.6.1.2.1.43.11.1.1.4"  # prtMarkerSuppliesClass
SUPPLY_DESCR = "1.3.6.1.2.1.43.11.1.1.6"  # prtMarkerSuppliesDescription
SUPPLY_MAX = "1.3.6.1.2.1.43.11.1.1.8"  # prtMarkerSuppliesMaxCapacity
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9"  # prtMarkerSuppliesLevel
ALERT_DESCR = "1.3.6.1.2.1.43.18.1.1.8"  # prtAlertDescription

STATUS_SCALARS = (
    SYS_DESCR,
    HR_DEVICE_DESCR,
    HR_DEVICE_STATUS,
    HR_PRINTER_STATUS,
    HR_PRINTER_ERROR_STATE,
    PRT_MARKER_LIFE_COUNT,
)
STATUS_COLUMNS = (SUPPLY_CLASS, SUPPLY_DESCR, SUPPLY_MAX, SUPPLY_LEVEL, ALERT_DESCR)
MAX_TABLE_ROWS = 64  # a printer has a handful of supplies and alerts; stop a runaway agent

DEVICE_STATUS = {1: "unknown", 2: "running", 3: "warning", 4: "testing", 5: "down"}
PRINTER_STATUS = {1: "other", 2: "unknown", 3: "idle", 4: "printing", 5: "warmup"}

# hrPrinterDetectedErrorState (RFC 2790, extended by RFC 3805) is a BITS value sent as an
# OCTET STRING: bit 0 is the most significant bit of the first octet.
ERROR_BITS = (
    "lowPaper",  # 0  (0x80 of octet 1)
    "noPaper",  # 1
    "lowToner",  # 2
    "noToner",  # 3
    "doorOpen",  # 4
    "jammed",  # 5
    "offline",  # 6
    "serviceRequested",  # 7  (0x01 of octet 1)
    "inputTrayMissing",  # 8  (0x80 of octet 2)
    "outputTrayMissing",  # 9
    "markerSupplyMissing",  # 10
    "outputNearFull",  # 11
    "outputFull",  # 12
    "inputTrayEmpty",  # 13
    "overduePreventMaint",  # 14
)

# Conditions that stop a job, most urgent first, with what the person at the printer does.
BLOCKING_ERRORS = {
    "jammed": "paper jam — clear the jammed paper",
    "doorOpen": "a door or cover is open — close it",
    "noPaper": "out of paper — load paper",
    "noToner": "out of toner — replace the toner cartridge",
    "markerSupplyMissing": "a toner cartridge or other supply is missing — install it",
    "outputFull": "the output tray is full — empty it",
    "outputTrayMissing": "the output tray is missing — put it back",
    "offline": "the printer is offline — put it back online",
}
# Conditions worth showing, but the printer still prints.
WARNING_ERRORS = {
    "lowPaper": "paper is low",
    "lowToner": "toner is low",
    "inputTrayEmpty": "an input tray is empty",
    "inputTrayMissing": "an input tray is missing",
    "outputNearFull": "the output tray is nearly full",
    "serviceRequested": "the printer asks for service",
    "overduePreventMaint": "preventive maintenance is overdue",
}

# prtMarkerSuppliesClass
SUPPLY_CONSUMED = 3  # supplyThatIsConsumed: toner, ink, drum … (level falls)
SUPPLY_RECEPTACLE = 4  # receptacleThatIsFilled: waste toner … (level rises)
LOW_SUPPLY_PERCENT = 10

MAX_SWEEP_ADDRESSES = 1024  # a /22
AUTH_PROTOCOLS = {
    "md5": "USM_AUTH_HMAC96_MD5",
    "sha": "USM_AUTH_HMAC96_SHA",
    "sha224": "USM_AUTH_HMAC128_SHA224",
    "sha256": "USM_AUTH_HMAC192_SHA256",
    "sha384": "USM_AUTH_HMAC256_SHA384",
    "sha512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "des": "USM_PRIV_CBC56_DES",
    "3des": "USM_PRIV_CBC168_3DES",
    "aes": "USM_PRIV_CFB128_AES",
    "aes128": "USM_PRIV_CFB128_AES",
    "aes192": "USM_PRIV_CFB192_AES",
    "aes256": "USM_PRIV_CFB256_AES",
}


# ---------------------------------------------------------------------------------------
# Targets


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
    def from_config(cls, config: SnmpConfig, timeout: float = 1.0, retries: int = 1) -> SnmpTarget:
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


def _seconds(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


# ---------------------------------------------------------------------------------------
# Decoding (pure: no pysnmp needed)


def decode_error_state(octets: bytes) -> tuple[str, ...]:
    """Names of the bits set in hrPrinterDetectedErrorState, in bit order."""
    names = []
    for bit, name in enumerate(ERROR_BITS):
        byte = bit // 8
        if byte < len(octets) and octets[byte] & (0x80 >> (bit % 8)):
            names.append(name)
    return tuple(names)


def encode_error_state(names: Iterable[str]) -> bytes:
    """The two octets of hrPrinterDetectedErrorState with these bits set."""
    octets = bytearray(2)
    for name in names:
        if name not in ERROR_BITS:
            raise ValueError(f"unknown hrPrinterDetectedErrorState bit {name!r}")
        bit = ERROR_BITS.index(name)
        octets[bit // 8] |= 0x80 >> (bit % 8)
    return bytes(octets)


def _text(value: Value | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
    else:
        text = str(value)
    return text.replace("\x00", "").strip()


def _int(value: Value | None) -> int | None:
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Supply:
    """One row of prtMarkerSuppliesTable."""

    index: str  # hrDeviceIndex.prtMarkerSuppliesIndex, e.g. "1.1"
    description: str
    max_capacity: int | None  # -1 no limit, -2 unknown
    level: int | None  # -1 no limit, -2 unknown, -3 some remaining
    supply_class: int | None = None  # 3 consumed (toner), 4 receptacle (waste toner)

    @property
    def receptacle(self) -> bool:
        return self.supply_class == SUPPLY_RECEPTACLE

    @property
    def percent(self) -> int | None:
        """Level as a percentage of capacity (fill level for a receptacle), None if unknown."""
        if self.level is None or self.max_capacity is None:
            return None
        if self.level < 0 or self.max_capacity <= 0:
            return None
        percent = min(100, math.floor(100 * self.level / self.max_capacity + 0.5))
        return max(percent, 1 if self.level > 0 else 0)  # a little left is not "0%"

    @property
    def remaining(self) -> str:
        """The level as a person reads it: "42%", "some remaining", "unknown" …"""
        if self.percent is not None:
            return f"{self.percent}%"
        if self.level == -3:
            return "some remaining"
        if self.level == -1:
            return "no limit"
        if self.level is not None and self.level >= 0 and self.max_capacity == -1:
            return str(self.level)
        return "unknown"

    @property
    def empty(self) -> bool:
        """A consumed supply with nothing left (a known capacity and level 0)."""
        return not self.receptacle and self.level == 0 and (self.max_capacity or 0) != 0

    @property
    def full(self) -> bool:
        """A receptacle (waste toner box) that is full."""
        return (
            self.receptacle
            and self.level is not None
            and self.max_capacity is not None
            and self.max_capacity > 0
            and self.level >= self.max_capacity
        )

    @property
    def low(self) -> bool:
        percent = self.percent
        if percent is None:
            return False
        if self.receptacle:
            return percent >= 100 - LOW_SUPPLY_PERCENT and not self.full
        return 0 < percent <= LOW_SUPPLY_PERCENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "description": self.description,
            "max_capacity": self.max_capacity,
            "level": self.level,
            "percent": self.percent,
            "remaining": self.remaining,
            "receptacle": self.receptacle,
        }


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer says about itself. Fields are None when the agent does not have them."""

    host: str = ""
    port: int = 161
    device_status: str | None = None  # unknown, running, warning, testing, down
    printer_status: str | None = None  # other, unknown, idle, printing, warmup
    errors: tuple[str, ...] = ()  # set bits of hrPrinterDetectedErrorState, in bit order
    page_count: int | None = None
    supplies: tuple[Supply, ...] = ()
    alerts: tuple[str, ...] = ()
    description: str | None = None  # sysDescr
    model: str | None = None  # hrDeviceDescr
    raw: Mapping[str, Value] = field(default_factory=dict, repr=False, compare=False)

    def blocking_reasons(self) -> list[str]:
        reasons = []
        if self.device_status == "down":
            reasons.append("the printer reports it is down — check its display")
        elif self.device_status == "testing":
            reasons.append("the printer is in test or maintenance mode")
        empty = [s for s in self.supplies if s.empty]
        for name, reason in BLOCKING_ERRORS.items():
            if name in self.errors and not (name == "noToner" and empty):
                reasons.append(reason)
        reasons.extend(f"{s.description or 'a supply'} is empty — replace it" for s in empty)
        reasons.extend(
            f"{s.description or 'a waste receptacle'} is full — empty or replace it"
            for s in self.supplies
            if s.full
        )
        return reasons

    def blocking_reason(self) -> str | None:
        """Why a job must not be sent now, in words for the person at the printer; None if
        the printer can take it (low paper or toner are warnings, not reasons)."""
        reasons = self.blocking_reasons()
        if not reasons:
            return None
        said = f" (the printer says: {'; '.join(self.alerts)})" if self.alerts else ""
        return "; ".join(reasons) + said

    @property
    def printable(self) -> bool:
        return not self.blocking_reasons()

    def warnings(self) -> list[str]:
        found = [text for name, text in WARNING_ERRORS.items() if name in self.errors]
        if self.device_status == "warning" and not found:
            found.append("the printer reports a warning")
        found.extend(
            f"{s.description or 'a supply'} is low ({s.remaining})"
            for s in self.supplies
            if s.low and not s.receptacle
        )
        found.extend(
            f"{s.description or 'a waste receptacle'} is nearly full"
            for s in self.supplies
            if s.low and s.receptacle
        )
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": f"{self.host}:{self.port}",
            "device_status": self.device_status,
            "printer_status": self.printer_status,
            "errors": list(self.errors),
            "page_count": self.page_count,
            "supplies": [s.to_dict() for s in self.supplies],
            "alerts": list(self.alerts),
            "description": self.description,
            "model": self.model,
            "printable": self.printable,
            "blocking_reason": self.blocking_reason(),
            "warnings": self.warnings(),
        }


def _column(values: Mapping[str, Value], column: str) -> dict[str, Value]:
    prefix = column + "."
    return {oid[len(prefix) :]: v for oid, v in values.items() if oid.startswith(prefix)}


def _index_key(index: str) -> tuple[int, ...]:
    return tuple(int(part) for part in index.split(".") if part.isdigit())


def decode_status(values: Mapping[str, Value], host: str = "", port: int = 161) -> PrinterStatus:
    """A PrinterStatus from the objects read (dotted OID -> value; missing objects absent)."""
    device = _int(values.get(HR_DEVICE_STATUS))
    printer = _int(values.get(HR_PRINTER_STATUS))
    state = values.get(HR_PRINTER_ERROR_STATE)
    descriptions = _column(values, SUPPLY_DESCR)
    maxima = _column(values, SUPPLY_MAX)
    levels = _column(values, SUPPLY_LEVEL)
    classes = _column(values, SUPPLY_CLASS)
    indexes = sorted(set(descriptions) | set(levels), key=_index_key)
    supplies = tuple(
        Supply(
            index=index,
            description=_text(descriptions.get(index)) or "",
            max_capacity=_int(maxima.get(index)),
            level=_int(levels.get(index)),
            supply_class=_int(classes.get(index)),
        )
        for index in indexes
    )
    alert_rows = _column(values, ALERT_DESCR)
    alerts = tuple(
        text for index in sorted(alert_rows, key=_index_key) if (text := _text(alert_rows[index]))
    )
    return PrinterStatus(
        host=host,
        port=port,
        device_status=None if device is None else DEVICE_STATUS.get(device, f"other({device})"),
        printer_status=None
        if printer is None
        else PRINTER_STATUS.get(printer, f"other({printer})"),
        errors=decode_error_state(state) if isinstance(state, bytes) else (),
        page_count=_int(values.get(PRT_MARKER_LIFE_COUNT)),
        supplies=supplies,
        alerts=alerts,
        description=_text(values.get(SYS_DESCR)) or None,
        model=_text(values.get(HR_DEVICE_DESCR)) or None,
        raw=dict(values),
    )


# ---------------------------------------------------------------------------------------
# The SNMP loop: one event loop thread, one SnmpEngine, shared by every caller


class _SnmpLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._engine: SnmpEngine | None = None

    def forget(self) -> None:
        """In a forked child: the loop thread did not come along, start afresh on next use."""
        self._lock = threading.Lock()
        self._loop = self._thread = self._engine = None
        self._pid = 0

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if self._loop is None or self._pid != os.getpid() or not alive:
                # First use, after close(), or the loop thread died.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._serve, args=(loop,), name="snmp", daemon=True
                )
                self._loop, self._thread, self._pid, self._engine = loop, thread, os.getpid(), None
                thread.start()
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def engine(self) -> SnmpEngine:
        """The shared engine; call on the loop thread only."""
        if self._engine is None:
            from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

            self._engine = SnmpEngine()
        return self._engine

    def run(self, make: Callable[[], Awaitable[T]], budget: float, target: SnmpTarget) -> T:
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            raise RuntimeError("blocking SNMP call made on the SNMP loop itself")

        async def call() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return future.result(timeout=budget)
        except TimeoutError:
            future.cancel()
            raise target.no_answer() from None

    def close(self) -> None:
        """Stop the loop thread and close the engine's socket (a later call starts again)."""
        with self._lock:
            loop, thread, engine = self._loop, self._thread, self._engine
            self._loop = self._thread = self._engine = None
        if loop is None or thread is None or self._pid != os.getpid() or loop.is_closed():
            return

        def stop() -> None:
            if engine is not None:
                engine.close_dispatcher()
            loop.stop()

        try:
            loop.call_soon_threadsafe(stop)
        except RuntimeError:  # loop already closed
            return
        thread.join(timeout=5)


_LOOP = _SnmpLoop()
atexit.register(_LOOP.close)
os.register_at_fork(after_in_child=_LOOP.forget)


def close() -> None:
    """Release the shared SNMP engine and its thread (tests; the process exit does it too)."""
    _LOOP.close()


# ---------------------------------------------------------------------------------------
# Requests (run on the loop thread)


def plain_value(value: Any) -> Value | None:
    """A pysnmp value as a plain Python value; None for noSuch*/endOfMibView/Null."""
    from pyasn1.type import univ

    if isinstance(value, univ.Null):  # before OctetString: pyasn1's Null subclasses it
        return None
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    return None  # Null, NoSuchObject, NoSuchInstance, EndOfMibView


class _Session:
    """One target's auth, transport and context on an engine."""

    def __init__(self, engine: SnmpEngine, target: SnmpTarget) -> None:
        self.engine = engine
        self.target = target
        self.transport: Any = None
        self.auth: Any = None
        self.context: Any = None

    def _auth(self) -> tuple[Any, Any]:
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        target = self.target
        if target.v3 is None:
            return hlapi.CommunityData(target.community or "public", mpModel=1), hlapi.ContextData()
        v3 = target.v3
        auth_protocol = getattr(hlapi, AUTH_PROTOCOLS[v3.auth_protocol.lower()])
        priv_protocol = getattr(hlapi, PRIV_PROTOCOLS[v3.priv_protocol.lower()])
        user = hlapi.UsmUserData(
            v3.user,
            authKey=v3.auth_key,
            privKey=v3.priv_key,
            authProtocol=auth_protocol if v3.auth_key else None,
            privProtocol=priv_protocol if v3.priv_key else None,
        )
        return user, hlapi.ContextData(contextName=v3.context.encode())

    async def open(self) -> None:
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch import asyncio as hlapi

        target = self.target
        kind = hlapi.Udp6TransportTarget if ":" in target.host else hlapi.UdpTransportTarget
        try:
            self.transport = await kind.create(
                (target.host, target.port), timeout=target.timeout, retries=target.retries
            )
        except PySnmpError:
            raise PrinterUnreachable(
                f"cannot find the printer {target.host}: the name does not resolve — "
                "check the SNMP address"
            ) from None
        self.auth, self.context = self._auth()

    async def _request(self, command: Any, oids: Iterable[str]) -> list[tuple[str, Any]]:
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch import asyncio as hlapi
        from pysnmp.proto import errind

        if self.transport is None:
            await self.open()
        target = self.target
        var_binds = [hlapi.ObjectType(hlapi.ObjectIdentity(oid)) for oid in oids]
        try:
            indication, status, _index, answer = await command(
                self.engine, self.auth, self.transport, self.context, *var_binds, lookupMib=False
            )
        except PySnmpError as exc:
            raise PrinterUnreachable(f"SNMP request to {target.address} failed: {exc}") from None
        if isinstance(indication, errind.RequestTimedOut):
            raise target.no_answer()
        if indication:
            raise PrinterUnreachable(
                f"SNMP at {target.address} refused the request ({indication}) — "
                "check the SNMP community or v3 user and keys"
            )
        if status:
            name = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
            raise PrinterUnreachable(f"SNMP agent at {target.address} answered with error {name}")
        return [(str(name), value) for name, value in answer]

    async def get(self, oids: Iterable[str]) -> dict[str, Value]:
        from pysnmp.hlapi.v3arch.asyncio import get_cmd

        found = {}
        for name, value in await self._request(get_cmd, oids):
            converted = plain_value(value)
            if converted is not None:
                found[name] = converted
        return found

    async def walk(self, columns: Iterable[str]) -> dict[str, Value]:
        """Walk several table columns side by side with GETNEXT (v2c/v3 agents)."""
        from pysnmp.hlapi.v3arch.asyncio import next_cmd

        found: dict[str, Value] = {}
        cursors = {column: column for column in columns}
        for _ in range(MAX_TABLE_ROWS + 1):
            if not cursors:
                break
            answer = await self._request(next_cmd, cursors.values())
            for column, (name, value) in zip(list(cursors), answer, strict=False):
                converted = plain_value(value)
                if (
                    converted is None
                    or not name.startswith(column + ".")
                    or _index_key(name) <= _index_key(cursors[column])
                ):
                    del cursors[column]
                    continue
                found[name] = converted
                cursors[column] = name
        return found


# ---------------------------------------------------------------------------------------
# Public API


def _check_target(target: SnmpTarget) -> None:
    if not isinstance(target, SnmpTarget):
        raise BadRequest(f"expected an SnmpTarget, got {type(target).__name__}")


def read_values(target: SnmpTarget, oids: Iterable[str]) -> dict[str, Value]:
    """GET these objects; the ones the agent does not have are left out."""
    _check_target(target)
    wanted = list(oids)

    async def read() -> dict[str, Value]:
        return await _Session(_LOOP.engine(), target).get(wanted)

    return _LOOP.run(read, target.budget + 5, target)


def read_status(target: SnmpTarget) -> PrinterStatus:
    """Ask the printer for its state; PrinterUnreachable if it does not answer."""
    _check_target(target)

    async def read() -> dict[str, Value]:
        session = _Session(_LOOP.engine(), target)
        values = await session.get(STATUS_SCALARS)
        values.update(await session.walk(STATUS_COLUMNS))
        return values

    # A GET, then one GETNEXT per table row: each bounded by pysnmp's own timeout.
    values = _LOOP.run(read, target.budget * 4 + 10, target)
    return decode_status(values, target.host, target.port)


def preflight(target: SnmpTarget) -> PrinterStatus:
    """The printer's status if a job can go now; PrinterNotReady with the reason if not."""
    status = read_status(target)
    reason = status.blocking_reason()
    if reason:
        raise PrinterNotReady(reason)
    return status


class Discovered(NamedTuple):
    host: str
    sys_descr: str
    model: str | None  # hrDeviceDescr of the printer device, when there is one


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        raise BadRequest(
            f"{cidr!r} is not a network: use ADDRESS/PREFIX, e.g. 192.168.1.0/24"
        ) from None
    if network.num_addresses > MAX_SWEEP_ADDRESSES:
        raise BadRequest(
            f"refusing to sweep {network} ({network.num_addresses} addresses): "
            f"sweep at most a /22 ({MAX_SWEEP_ADDRESSES} addresses) at a time"
        )
    return network


def sweep(
    cidr: str,
    community: str | None = "public",
    *,
    v3: SnmpV3User | None = None,
    port: int = 161,
    timeout: float = 1.0,
    retries: int = 0,
    concurrency: int = 64,
    printers_only: bool = True,
) -> list[Discovered]:
    """Ask every address of a small network (at most a /22) for sysDescr and model.

    Returns the hosts that answered, in address order; with `printers_only`, only those that
    have a printer in the Host Resources MIB (hrDeviceType printer or an hrPrinterStatus).
    Takes about ceil(addresses / concurrency) * timeout * (retries + 1) seconds.
    """
    network = _network(cidr)
    if v3 is not None:
        community = None
    hosts = [str(address) for address in network.hosts()]
    targets = [SnmpTarget(host, port, community, v3, timeout, retries) for host in hosts]
    if not 1 <= concurrency <= 256:
        raise BadRequest("sweep concurrency must be 1-256")
    if not targets:
        return []
    oids = (SYS_DESCR, HR_DEVICE_TYPE, HR_DEVICE_DESCR, HR_PRINTER_STATUS)

    async def probe(engine: SnmpEngine, gate: asyncio.Semaphore, target: SnmpTarget) -> Any:
        async with gate:
            try:
                values = await _Session(engine, target).get(oids)
            except PrinterUnreachable:
                return None
        if SYS_DESCR not in values and HR_PRINTER_STATUS not in values:
            return None
        is_printer = values.get(HR_DEVICE_TYPE) == HR_DEVICE_PRINTER or HR_PRINTER_STATUS in values
        if printers_only and not is_printer:
            return None
        return Discovered(
            target.host,
            _text(values.get(SYS_DESCR)) or "",
            (_text(values.get(HR_DEVICE_DESCR)) or None) if is_printer else None,
        )

    async def run() -> list[Discovered]:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        # A sweep-only engine: the shared one would keep an entry per address swept.
        engine = SnmpEngine()
        gate = asyncio.Semaphore(concurrency)
        try:
            found = await asyncio.gather(*(probe(engine, gate, t) for t in targets))
        finally:
            engine.close_dispatcher()
        return [item for item in found if item is not None]

    rounds = math.ceil(len(targets) / concurrency)
    return _LOOP.run(run, rounds * targets[0].budget + 15, targets[0])
