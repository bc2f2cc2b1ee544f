"""A running node: its identity and state, the three HTTPS servers, and the maintenance
loop (sync with peers, expiry, repair).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.datadir import DataDir
from appliance.endpoint import Endpoint
from appliance.errors import MeshprintError
from appliance.https.connections import Limits, fit_to_fd_limit
from appliance.https.server import Request, Response, Server
from appliance.jobs import deliver, sessions, usage
from appliance.mesh import holders, repair, sync
from appliance.mesh.peers import IDLE_TICK, PEER_IDLE_TIMEOUT, SYNC_INTERVAL, Peers
from appliance.printers import monitor
from appliance.sdnotify import Notifier, listen_socket
from appliance.site import admin
from appliance.site.ca import load_cert, load_key
from appliance.site.directory import Directory
from appliance.site.state import open_site
from appliance.site.tls import peer_client_context, server_context
from appliance.store.deliveries import DeliveryLog
from appliance.store.jobs import JobStore
from appliance.store.usage import UsageLog

log = logging.getLogger(__name__)
USAGE_FORWARD_EVERY = 2.0  # seconds between sends of usage records to the controller


class Node:
    def __init__(self, data: DataDir, endpoint: Endpoint) -> None:
        self.data = data
        self.endpoint = endpoint
        identity = data.identity()
        self.id = identity.node_id
        self.role = identity.role
        self.db, self.site = open_site(data)
        self.store = JobStore(data.root, self.db)
        self.deliveries = DeliveryLog(self.db)
        self.usage = UsageLog(self.db)  # printed jobs' usage records (store/usage.py)
        self.peers = Peers(
            self.id,
            peer_client_context(data.node_cert, data.node_key, data.ca_cert),
            self.directory,
        )
        self.servers: list[Server] = []
        self._stop = threading.Event()
        self.notifier = Notifier.from_env()
        self.last_sync: dict[str, dict[str, Any]] = {}
        self.intake_secret = ""  # the Secure Print backend's key to the local door
        self.claims = deliver.ClaimWatch()  # claims held here, checked with their node
        self.sync_schedule = sync.Schedule()  # gossip and co-holders, push on change
        self.key_sessions = sessions.KeySessions()  # the release API's signed-in sessions
        self._usage_due = 0.0  # when usage records are next sent to the controller
        self._identity: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None

    def directory(self) -> Directory:
        return self.site.directory()

    @property
    def is_controller(self) -> bool:
        """Whether this node is the site's controller (whether or not the CA key is
        unlocked: it is kept sealed, `appliance.site.authority`)."""
        return self.site.controller_here(self.id)

    # Life cycle

    def start(self) -> None:
        from appliance.api import peer, release, submit
        from appliance.intake import door

        self.data.tighten()  # 0700 / 0600 also for files an older version made
        self.store.recover()
        self.intake_secret = door.prepare(self.data, self.endpoint)
        cert, key, ca = self.data.node_cert, self.data.node_key, self.data.ca_cert
        e = self.endpoint
        limits = fit_to_fd_limit(servers=4)  # the open-file limit holds every port's caps
        # Members (mutual TLS) keep their connections to us open across gossip rounds.
        peer_limits = dataclasses.replace(limits, idle_timeout=PEER_IDLE_TIMEOUT)
        apps = [  # (name, port, app, CA that client certificates must come from, limits)
            ("peer", e.peer_port, peer.app(self), ca, peer_limits),
            ("submit", e.submit_port, submit.app(self), None, limits),
            (
                "release",
                e.release_port,
                release.app(self, self._release_page(), self.key_sessions),
                None,
                limits,
            ),
        ]
        self.servers = [
            Server(name, (e.bind, port), app, server_context(cert, key, trust), caps)
            for name, port, app, trust, caps in apps
        ]
        if self.is_controller:
            for warning in admin.bring_up_to_date(self.site):
                log.warning("%s", warning)
        # A local write: the directory has our address before any API answers, so an
        # `invite` right after /v1/health can put it in the token.
        self._announce()
        self._add_printer(cert, key, limits)
        for server in self.servers:
            server.start()
        threading.Thread(target=self._maintain, name="maintenance", daemon=True).start()
        threading.Thread(target=deliver.resume, args=(self,), name="resume", daemon=True).start()
        monitor.start(self, self._stop)
        from appliance.mqtt.events import start_recorder

        start_recorder(self, self._stop)
        self._start_control_plane()
        log.info(
            "node %s (%s) up: peer %s:%d, submit %d, release %d",
            self.id,
            self.role,
            e.address,
            e.peer_port,
            e.submit_port,
            e.release_port,
        )
        self.notifier.ready(
            f"serving: peer {e.peer_port}, submit {e.submit_port}, release {e.release_port}"
        )

    @property
    def ipp_port(self) -> int:
        """The printer's port: as asked, else 631 on a super node; 0 when off."""
        port = self.endpoint.ipp_port
        if port is None:
            from appliance.endpoint import DEFAULT_IPP_PORT

            port = DEFAULT_IPP_PORT if self.role == "super" else 0
        return port

    def _add_printer(self, cert: Path, key: Path, limits: Limits) -> None:
        """The node's own IPP Everywhere printer: ipp:// and ipps:// on one port (the first
        byte of a connection tells which, as CUPS does)."""
        port = self.ipp_port
        if not port:
            return
        from appliance.intake.ipp.printer import Printer, PrinterConfig

        e = self.endpoint
        config = PrinterConfig(port, e.address, f"https://{e.address}:{e.release_port}/")
        printer = Printer(self, config)
        context = server_context(cert, key, None)
        # On the appliance systemd binds 631 (meshprint-node.socket) and passes it.
        sock = listen_socket("ipp", port)
        self.servers.append(
            Server("ipp", (e.bind, port), printer.app, context, limits, plain=True, sock=sock)
        )

    def _start_control_plane(self) -> None:
        """The MQTT agent runs whenever the site directory names a broker."""
        try:
            from appliance.mqtt import agent
        except ImportError as err:
            log.warning("mqtt: no control plane (%s); install meshprint[appliance]", err)
            return
        agent.start(self, self._stop)

    def _release_page(self) -> Callable[[Request], Response] | None:
        """The web release page for the release port (the web UI in release mode), or
        None when the web UI cannot be loaded (the /v1 API keeps working without it).

        Flask and the web UI load at the page's first request, not at start: an office
        PC's node that no one opens the page on stays ~8 MB lighter."""
        import importlib.util

        if importlib.util.find_spec("flask") is None:  # pragma: no cover - a core dependency
            log.warning("no release page on the release port: flask is not installed")
            return None
        lock = threading.Lock()
        built: list[Callable[[Request], Response]] = []

        def page(request: Request) -> Response:
            with lock:
                if not built:
                    built.append(self._build_release_page())
            return built[0](request)

        return page

    def _build_release_page(self) -> Callable[[Request], Response]:
        from appliance.api import wsgi
        from webui import create_app

        app = create_app(
            {"MESHPRINT_DATA": str(self.data.root), "RELEASE_API": self._loopback()},
            mode="release",
        )
        return wsgi.adapter(app, self.endpoint.release_port)

    def _loopback(self) -> str:
        """Where this machine reaches its own release API (the web release page uses it)."""
        e = self.endpoint
        host = "127.0.0.1" if e.bind in ("0.0.0.0", "::", "") else e.bind
        return f"{host}:{e.release_port}"

    def wait(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        self._stop.wait()
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.notifier.stopping()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _maintain(self) -> None:
        while not self._stop.is_set():
            self.notifier.watchdog()
            steps = (
                self._announce,
                self._sync,
                self._expire,
                self._repair,
                self._settle_claims,
                self._forward_usage,
                self._end_stale_sessions,
            )
            for step in steps:
                try:
                    step()
                except MeshprintError as err:
                    log.info("%s: %s", step.__name__.strip("_"), err)
                except Exception:
                    log.exception("%s failed", step.__name__.strip("_"))
            # A node that holds no job has no co-holder to follow closely: a slower tick
            # (gossip rounds and the controller's pushes keep their own pace).
            self._stop.wait(SYNC_INTERVAL if self.store.has_jobs() else IDLE_TICK)

    # Steps of the maintenance loop

    def my_record(self) -> dict[str, Any]:
        e = self.endpoint
        return {
            "host": e.address,
            "peer_port": e.peer_port,
            "submit_port": e.submit_port,
            "release_port": e.release_port,
        }

    def _announce(self) -> None:
        """Make sure this node's current address is announced, signed with its own key
        (`appliance.site.addresses`): the sync takes it to every member."""
        if self.directory().node(self.id) is None:
            return
        if self._identity is None:
            self._identity = (load_cert(self.data.node_cert), load_key(self.data.node_key))
        self.site.announce(self.id, *self._identity, self.my_record())

    def _sync(self) -> None:
        sync.run(self, self.sync_schedule)

    def _expire(self) -> None:
        holders.expire(self, time.time())

    def _repair(self) -> None:
        repair.run(self)

    def _settle_claims(self) -> None:
        self.claims.run(self)

    def _forward_usage(self) -> None:
        """Printed jobs' usage records to the controller, once it is live: every
        USAGE_FORWARD_EVERY s, at once again while there is a full batch left."""
        now = time.monotonic()
        if now < self._usage_due:
            return
        sent = usage.forward(self)
        self._usage_due = now + (0 if sent >= usage.FORWARD_BATCH else USAGE_FORWARD_EVERY)

    def _end_stale_sessions(self) -> None:
        """A directory in which a user's password was reset (or the user removed) ends
        their signed-in sessions here: the opened key leaves memory."""
        ended = self.key_sessions.follow(self.directory())
        if ended:
            log.info("%d release session(s) ended: the user's password was reset", ended)
