"""Broker commands: the site broker's Mosquitto configuration, and release commands
published through it (both on the controller)."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from appliance.cli.common import (
    admin_args,
    admin_site,
    command,
    data_arg,
    data_dir,
    key_file_arg,
    print_json,
    read_secret,
    release_authority,
)
from appliance.datadir import DataDir
from appliance.errors import ConfigError, MeshprintError, NotFound
from appliance.printers import registry
from appliance.printoptions import SIDES
from appliance.site.state import open_site


def _controller(args: argparse.Namespace) -> DataDir:
    data = data_dir(args)
    if not data.is_controller:
        raise ConfigError("run this on the site controller (the node that created the site)")
    return data


def cmd_broker_config(args: argparse.Namespace) -> None:
    from appliance.mqtt import broker

    _controller(args)
    _, site = admin_site(args)
    directory = site.directory()
    me = directory.node(directory.controller_id)
    host = args.address or (me.host if me else None)
    if not host:
        raise ConfigError(
            "say where nodes reach the broker with --address HOST (or start the node once so "
            "the directory has its address)"
        )
    upstream = None
    if args.upstream:
        password = (
            read_secret(args.upstream_password_file, "upstream password")
            if (args.upstream_password_file)
            else None
        )
        upstream = broker.Upstream.from_url(
            args.upstream,
            ca=args.upstream_ca,
            cert=args.upstream_cert,
            key=args.upstream_key,
            username=args.upstream_user,
            password=password,
            prefix=args.upstream_prefix,
        )
    if not 1 <= args.port <= 65535:
        raise ConfigError("--port must be between 1 and 65535")
    config = broker.BrokerConfig(
        site_id=site.site_id,
        controller=directory.controller_id,
        out=Path(args.out).resolve(),
        port=args.port,
        bind=args.bind,
        hosts=(host, *args.host),
        upstream=upstream,
        revoked=tuple(sorted(directory.revoked)),
    )
    written = broker.write(config, site.ca)
    print(f"wrote {', '.join(p.name for p in written)} to {config.out}")
    print(f"start it with: mosquitto -c {config.conf}")
    print("(run this again after 'member remove', and restart it, to refuse that member)")
    if args.no_announce:
        return
    where = broker.BrokerAddress(host, args.port)
    if broker.address(directory.doc) != where:  # safe to run at every broker start
        site.edit(lambda doc: doc.__setitem__("broker", where.to_dict()))
    print(f"the site directory names the broker {host}:{args.port}: nodes connect to it")


def cmd_broker_off(args: argparse.Namespace) -> None:
    data = _controller(args)
    _, site = open_site(data)
    if "broker" not in site.directory().doc:
        print("the site directory names no broker")
        return
    _, site = admin_site(args)
    site.edit(lambda doc: doc.pop("broker", None))
    print("the site directory no longer names a broker: nodes disconnect from it")


def _deliverer(data: DataDir, job_id: str) -> str:
    """A holder of the job that answers now (this node when it holds a copy)."""
    from appliance.mesh.peers import Peers
    from appliance.site.tls import peer_client_context
    from appliance.store.jobs import JobStore, check_job_id

    check_job_id(job_id)
    db, site = open_site(data)
    me = data.identity().node_id
    job = JobStore(data.root, db).get(job_id)
    if job is not None:
        return me
    peers = Peers(
        me, peer_client_context(data.node_cert, data.node_key, data.ca_cert), site.directory
    )
    for record in peers.others():
        if not record.reachable:
            continue
        try:
            peers.client(record.id, timeout=5).job(job_id)
        except MeshprintError:
            continue
        return record.id  # it answered with its copy: a live holder
    raise NotFound(f"no member that answered holds job {job_id}")


def cmd_broker_release(args: argparse.Namespace) -> None:
    from appliance.mqtt import agent, broker, commands, topics

    data = _controller(args)
    _, site = open_site(data)
    directory = site.directory()
    # A cups: printer's queue is on one node's CUPS: that node delivers.
    queue_node = registry.find(directory.doc, args.printer).node
    target = args.holder or queue_node or _deliverer(data, args.job)
    if directory.node(target) is None:
        raise ConfigError(f"{target} is not a node of this site")
    signed = commands.release_command(
        release_authority(args, site),
        args.job,
        target,
        args.printer,
        args.copies,
        args.sides,
        args.mono,
        args.reprint,
    )
    topic = topics.node_topic(site.site_id, target, topics.COMMAND)
    payload = commands.encode(signed)
    if args.print_only:
        print_json({"topic": topic, "payload": payload.decode()})
        return
    where = broker.address(directory.doc)
    if where is None:
        raise ConfigError("the site has no broker (meshprint broker config), release by HTTPS")
    client_id = f"{directory.controller_id}-cli-{secrets.token_hex(4)}"
    with agent.Publisher(client_id, data.node_cert, data.node_key, data.ca_cert, where) as pub:
        pub.publish(topic, payload)
    print(f"release command for job {args.job} published to {target} ({topic})")


def register(sub: Any) -> None:
    broker = sub.add_parser("broker", help="the site MQTT broker (Mosquitto) and its commands")
    bsub = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")

    p = command(
        bsub,
        "config",
        cmd_broker_config,
        "write Mosquitto's configuration, ACL and certificate for the site broker (TLS, "
        "site-CA client certificates) and name it in the site directory",
    )
    data_arg(p)
    admin_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="where to write the broker files")
    p.add_argument("--port", type=int, default=8883, help="TLS listener port (default 8883)")
    p.add_argument("--bind", default="0.0.0.0", help="listener address (default 0.0.0.0)")
    p.add_argument(
        "--address", metavar="HOST", help="where nodes reach it (default: this node's address)"
    )
    p.add_argument(
        "--host", action="append", default=[], metavar="NAME", help="more names for its cert"
    )
    p.add_argument(
        "--no-announce", action="store_true", help="write the files only; leave the directory"
    )
    p.add_argument("--upstream", metavar="URL", help="bridge to mqtts://HOST[:PORT]")
    p.add_argument("--upstream-ca", metavar="FILE", help="the upstream broker's CA certificate")
    p.add_argument("--upstream-cert", metavar="FILE", help="client certificate for upstream")
    p.add_argument("--upstream-key", metavar="FILE", help="its key")
    p.add_argument("--upstream-user", metavar="NAME", help="user name for upstream")
    p.add_argument("--upstream-password-file", metavar="FILE", help="password for upstream")
    p.add_argument(
        "--upstream-prefix",
        metavar="PREFIX",
        help="remote topic prefix, ending in '/' (default: meshprint/SITE/, as here)",
    )

    p = command(bsub, "off", cmd_broker_off, "stop naming a broker: nodes disconnect from it")
    data_arg(p)
    admin_args(p)

    p = command(
        bsub,
        "release",
        cmd_broker_release,
        "publish a signed release command for a held job to a holder's command topic",
    )
    p.add_argument("job")
    data_arg(p)
    p.add_argument("--printer", required=True, metavar="NAME")
    p.add_argument("--holder", metavar="NODE", help="the node to deliver it (default: a holder)")
    p.add_argument("--copies", type=int, default=1)
    p.add_argument("--sides", default="one-sided", choices=SIDES)
    p.add_argument("--mono", action="store_true")
    p.add_argument("--reprint", action="store_true")
    key_file_arg(p)
    p.add_argument(
        "--print-only",
        action="store_true",
        help="print the topic and signed payload (e.g. to publish upstream) instead",
    )
