"""Topic names, and who may publish what.

    meshprint/SITE/node/NODE/presence   retained online/offline (the last will says offline)
    meshprint/SITE/node/NODE/events     job events: held, replicated, released, printed, expired
    meshprint/SITE/node/NODE/printers   retained printer status as this node last polled it
    meshprint/SITE/node/NODE/cmd        release commands for NODE (only the controller publishes)

A node publishes only under its own `node/NODE/` topics (except `cmd`); only the
controller publishes commands. The broker enforces this with its ACL (`acl_rules`), and
each node checks the controller's signature on every command anyway.
"""

from __future__ import annotations

import re

from appliance.errors import BadRequest

ROOT = "meshprint"
PRESENCE, EVENTS, PRINTERS, COMMAND = "presence", "events", "printers", "cmd"
NODE_KINDS = (PRESENCE, EVENTS, PRINTERS)  # what a node publishes about itself
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _check(segment: str, what: str) -> str:
    if not _SEGMENT.fullmatch(segment):
        raise BadRequest(f"{what} {segment!r} cannot be part of a topic name")
    return segment


def site_prefix(site_id: str) -> str:
    """`meshprint/SITE/`, the prefix of every topic of a site (and of its bridge mapping)."""
    return f"{ROOT}/{_check(site_id, 'site id')}/"


def node_topic(site_id: str, node_id: str, kind: str) -> str:
    if kind not in (*NODE_KINDS, COMMAND):
        raise BadRequest(f"unknown topic kind {kind!r}")
    return f"{site_prefix(site_id)}node/{_check(node_id, 'node id')}/{kind}"


def site_filter(site_id: str, kind: str) -> str:
    """A subscription filter for one kind of topic of every node of the site."""
    return f"{site_prefix(site_id)}node/+/{kind}"


def parse(topic: str) -> tuple[str, str, str] | None:
    """(site id, node id, kind) of a node topic, or None for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != ROOT or parts[2] != "node":
        return None
    if parts[4] not in (*NODE_KINDS, COMMAND):
        return None
    return parts[1], parts[3], parts[4]


def may_publish(site_id: str, client: str, controller: str, topic: str) -> bool:
    """The rule the broker's ACL enforces, for tests and for the agent's own checks."""
    parsed = parse(topic)
    if parsed is None or parsed[0] != site_id:
        return False
    _, node_id, kind = parsed
    if kind == COMMAND:
        return client == controller
    return node_id == client


def acl_rules(site_id: str, controller: str) -> str:
    """Mosquitto's ACL file: clients are named by their certificate's common name
    (`use_identity_as_username`), which is their node id."""
    prefix = site_prefix(site_id)
    lines = [
        "# meshprint site broker ACL (written by `meshprint broker config`)",
        "# Every member: read the whole site, write only its own presence, events and printers,",
        "# read only its own commands.",
    ]
    for kind in NODE_KINDS:
        lines.append(f"pattern write {prefix}node/%u/{kind}")
        lines.append(f"pattern read {prefix}node/+/{kind}")
    lines.append(f"pattern read {prefix}node/%u/{COMMAND}")
    lines += [
        "",
        "# The controller alone commands.",
        f"user {_check(controller, 'controller id')}",
        f"topic write {prefix}node/+/{COMMAND}",
        "",
    ]
    return "\n".join(lines)
