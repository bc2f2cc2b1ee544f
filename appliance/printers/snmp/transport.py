"""SNMP requests over pysnmp's asyncio API: one event loop thread, one SnmpEngine, shared
by every caller.

pysnmp 7 only has an asyncio API, and an SnmpEngine is bound to the event loop it first
ran on; a fresh engine costs ~0.3 s before its first answer, then ~2 ms per request. The
node is threaded (one thread per HTTP request), so every call goes through one private
event loop in a daemon thread that owns one shared SnmpEngine (`LOOP`): the blocking
functions built on it are safe to call from any thread, and only the first request of the
process pays the warm-up. pysnmp is imported on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from appliance.printers.errors import PrinterUnreachable
from appliance.printers.snmp.decode import index_key
from appliance.printers.snmp.mib import AUTH_PROTOCOLS, PRIV_PROTOCOLS
from appliance.printers.snmp.models import Value
from appliance.printers.snmp.target import SnmpTarget, check_target

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

T = TypeVar("T")
MAX_TABLE_ROWS = 64  # a printer has a handful of supplies and alerts; stop a runaway agent


class SnmpLoop:
    """An event loop in a daemon thread with the SnmpEngine that runs on it."""

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


LOOP = SnmpLoop()
atexit.register(LOOP.close)
os.register_at_fork(after_in_child=LOOP.forget)


def close() -> None:
    """Release the shared SNMP engine and its thread (tests; the process exit does it too)."""
    LOOP.close()


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


class Session:
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
                    or index_key(name) <= index_key(cursors[column])
                ):
                    del cursors[column]
                    continue
                found[name] = converted
                cursors[column] = name
        return found


def read_values(target: SnmpTarget, oids: Iterable[str]) -> dict[str, Value]:
    """GET these objects; the ones the agent does not have are left out."""
    check_target(target)
    wanted = list(oids)

    async def read() -> dict[str, Value]:
        return await Session(LOOP.engine(), target).get(wanted)

    return LOOP.run(read, target.budget + 5, target)
