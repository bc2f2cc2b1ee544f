"""Each node's MQTT agent (paho-mqtt 2.x, MQTT v5, TLS with the node's site certificate).

- retained presence on `node/NODE/presence`, with a last will saying offline; the
  others' presence is followed as advisory liveness (`Peers.presence`);
- job events (`events.Watcher`) and printer status, metadata only;
- release commands on `node/NODE/cmd` at QoS 1: acknowledged only after they were acted
  on (or refused), in a persistent session, so a command is not lost across a broker or
  node restart — and a redelivered one is answered from the delivery log, never printed
  twice.

The agent reconnects with backoff (paho's, 1 s doubling to `MAX_BACKOFF`). Nothing
depends on it: with the broker down, listing and releasing go by direct HTTPS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.errors import Forbidden, MeshprintError, Unavailable
from appliance.mqtt import broker, commands, events, topics
from appliance.mqtt.context import AgentContext
from appliance.site.directory import Directory
from appliance.site.tls import peer_client_context

log = logging.getLogger(__name__)
MIN_BACKOFF = 1
MAX_BACKOFF = 16
KEEPALIVE = 15
SESSION_EXPIRY = 7 * 86400  # the broker keeps our commands this long while we are away
WATCH_INTERVAL = 0.5
NO_BROKER_INTERVAL = 5.0  # how often a node without a broker looks for one in the directory
MAX_QUEUED = 1000  # events beyond this during a broker outage are dropped (metadata only)


def nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho does not set TCP_NODELAY: without it a command waits ~40-90 ms on Nagle."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tls_client(
    client_id: str,
    cert: Any,
    key: Any,
    ca: Any,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client with the site's TLS (our certificate; the broker's checked against the
    site CA and its address) and TCP_NODELAY."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    client.tls_set_context(peer_client_context(cert, key, ca))
    client.on_socket_open = nodelay
    client.reconnect_delay_set(MIN_BACKOFF, MAX_BACKOFF)
    return client


def session_properties() -> Properties:
    # paho-mqtt ships py.typed but leaves Properties.__init__ unannotated.
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY
    return props


class Agent:
    """One connection to the site broker for one node."""

    def __init__(self, node: AgentContext, address: broker.BrokerAddress) -> None:
        self.node = node
        self.address = address
        site = node.site.site_id
        self.presence_topic = topics.node_topic(site, node.id, topics.PRESENCE)
        self.events_topic = topics.node_topic(site, node.id, topics.EVENTS)
        self.printers_topic = topics.node_topic(site, node.id, topics.PRINTERS)
        self.command_topic = topics.node_topic(site, node.id, topics.COMMAND)
        self.presence_filter = topics.site_filter(site, topics.PRESENCE)
        self.connected = threading.Event()
        self._unreachable_logged = False
        self._commands: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        data = node.data
        self.client = tls_client(
            node.id, data.node_cert, data.node_key, data.ca_cert, manual_ack=True
        )
        self.client.max_queued_messages_set(MAX_QUEUED)  # events kept through an outage
        self.client.will_set(self.presence_topic, self._presence("offline"), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message
        self._worker = threading.Thread(target=self._work, name="mqtt-commands", daemon=True)

    def start(self) -> None:
        log.info("mqtt: connecting to the site broker %s:%d", self.address.host, self.address.port)
        self._worker.start()
        self.client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=KEEPALIVE,
            clean_start=False,
            properties=session_properties(),
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Say offline (a clean disconnect does not fire the will) and disconnect."""
        if self.connected.is_set():
            info = self.client.publish(
                self.presence_topic, self._presence("offline"), qos=1, retain=True
            )
            info.wait_for_publish(timeout=2)
        self.connected.clear()  # a goodbye, not a lost broker
        self.node.peers.broker_lost()
        self.client.disconnect()
        self.client.loop_stop()
        self._commands.put(None)

    # Publishing

    def _presence(self, state: str) -> bytes:
        return json.dumps(
            {"node": self.node.id, "role": self.node.role, "state": state, "at": time.time()}
        ).encode()

    def publish_event(self, event: dict[str, Any]) -> None:
        # QoS 1: paho keeps it queued while disconnected and sends it on reconnect.
        self.client.publish(self.events_topic, json.dumps(event).encode(), qos=1)

    def publish_printers(self, status: dict[str, Any]) -> None:
        payload = json.dumps({"node": self.node.id, "at": time.time(), "printers": status})
        self.client.publish(self.printers_topic, payload.encode(), qos=1, retain=True)

    # Callbacks (paho's network thread)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt: the broker refused us: %s (retrying)", reason)
            return
        log.info("mqtt: connected to %s:%d", self.address.host, self.address.port)
        self._unreachable_logged = False
        client.subscribe(self.command_topic, qos=1)
        client.subscribe(self.presence_filter, qos=1)  # the others' presence: liveness
        client.publish(self.presence_topic, self._presence("online"), qos=1, retain=True)
        self.connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        """No TCP connection, no TLS handshake within the timeout, or a certificate refused:
        said once per outage (paho retries with backoff)."""
        if not self._unreachable_logged:
            self._unreachable_logged = True
            log.warning(
                "mqtt: cannot reach the site broker at %s:%d (no answer, or TLS refused); "
                "retrying with backoff up to %d s — releases work by HTTPS meanwhile",
                self.address.host,
                self.address.port,
                MAX_BACKOFF,
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected.is_set():
            log.warning("mqtt: lost the broker (%s); reconnecting with backoff", reason)
        self.connected.clear()
        self.node.peers.broker_lost()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parsed = topics.parse(message.topic)
        if parsed is not None and parsed[2] == topics.PRESENCE:
            self.presence(parsed[0], parsed[1], bytes(message.payload))
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        self._commands.put(message)  # acted on (and acknowledged) in the worker thread

    def presence(self, site_id: str, node_id: str, payload: bytes) -> None:
        """A member's retained presence (the broker's ACL lets only that member, or its
        last will, publish it): advisory liveness for the status view and placement, and
        a direct check when it says offline (`Peers.presence`)."""
        if site_id != self.node.site.site_id:
            return
        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            return
        if state in ("online", "offline"):
            self.node.peers.presence(node_id, state == "online")

    # Commands

    def _work(self) -> None:
        while (message := self._commands.get()) is not None:
            try:
                self.handle(message.topic, bytes(message.payload))
            finally:
                if message.qos > 0:
                    self.client.ack(message.mid, message.qos)

    def handle(self, topic: str, payload: bytes) -> None:
        """Act on one command; a refusal is logged and prints nothing."""
        if topic != self.command_topic:
            log.warning("mqtt: ignored a message on %s (not our command topic)", topic)
            return
        try:
            outcome = commands.act_on(self.node, payload)
        except commands.NotDelivered as err:
            log.warning(
                "mqtt: release %s of job %s not printed: %s", err.release_id, err.job_id, err
            )
            return
        except MeshprintError as err:
            log.warning("mqtt: release command refused: %s", err)
            return
        except Exception:
            log.exception("mqtt: release command failed")
            return
        d = outcome.delivery
        if outcome.repeated:
            log.info(
                "mqtt: release %s of job %s was already delivered (%s): not printed again",
                d.release_id,
                d.job_id,
                d.stage,
            )
        else:
            log.info(
                "mqtt: release %s of job %s to %s: %s", d.release_id, d.job_id, d.printer, d.stage
            )


def start(node: AgentContext, stop: threading.Event) -> threading.Thread:
    """Run the agent while the directory names a broker (following changes), publishing
    events and printer status as they happen."""

    def run() -> None:
        agent: Agent | None = None
        watcher = events.Watcher(node)
        while not stop.is_set():
            try:
                wanted = _wanted(node.directory())
                if agent is not None and agent.address != wanted:
                    agent.stop()
                    agent = None
                if agent is None and wanted is not None:
                    agent = Agent(node, wanted)
                    agent.start()
                    # From now on: the current printer status goes to this broker, and
                    # what changed while no broker was named is not replayed.
                    watcher = events.Watcher(node)
                if agent is not None:  # no broker, nothing to diff: an idle node stays idle
                    for event in watcher.changes():
                        agent.publish_event(event)
                    printers = watcher.printers()
                    if printers is not None:
                        agent.publish_printers(printers)
            except Exception:
                log.exception("mqtt agent step failed")
            stop.wait(WATCH_INTERVAL if agent is not None else NO_BROKER_INTERVAL)
        if agent is not None:
            agent.stop()

    thread = threading.Thread(target=run, name="mqtt-agent", daemon=True)
    thread.start()
    return thread


def _wanted(directory: Directory) -> broker.BrokerAddress | None:
    return broker.address(directory.doc)


class Publisher:
    """A short-lived client that publishes at QoS 1 and reports the broker's answer: the
    controller's `broker release`, the tests and the benchmark."""

    def __init__(
        self, client_id: str, cert: Any, key: Any, ca: Any, address: broker.BrokerAddress
    ) -> None:
        self.address = address
        self.client = tls_client(client_id, cert, key, ca)
        self._acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self._connected = threading.Event()
        self._refused: Any = None
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._refused = reason if reason.is_failure else None
        self._connected.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        with self._acked:
            self._acks[mid] = reason
            self._acked.notify_all()

    def connect(self, timeout: float = 10.0) -> Publisher:
        where = f"{self.address.host}:{self.address.port}"
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=KEEPALIVE)
        except (OSError, ValueError) as err:
            raise Unavailable(f"cannot reach the site broker at {where}: {err}") from None
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise Unavailable(f"the site broker at {where} did not answer")
        if self._refused is not None:
            self.close()
            raise Forbidden(f"the site broker at {where} refused us: {self._refused}")
        return self

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> None:
        """Publish at QoS 1 and wait for the PUBACK; Forbidden-like error when refused."""
        info = self.client.publish(topic, payload, qos=1)
        with self._acked:
            if not self._acked.wait_for(lambda: info.mid in self._acks, timeout):
                raise Unavailable(f"the site broker did not acknowledge {topic}")
            reason = self._acks.pop(info.mid)
        if reason.is_failure:
            raise Forbidden(f"the site broker refused to publish on {topic}: {reason}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
