"""`meshprint edge …`: this PC as an edge node that starts at boot (install, status,
uninstall). Runs as root / Administrator: it registers a system service."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from appliance import bootservice
from appliance.cli.common import command
from appliance.datadir import DataDir
from appliance.errors import ConfigError, Unavailable

HANDOFF_TIMEOUT = 1800.0  # default: the grace period (10 min by default) and the copying


def _platform() -> str:
    return bootservice.platform_name()


def _data(args: argparse.Namespace, platform: str) -> Path:
    return Path(args.data) if args.data else bootservice.default_data_dir(platform)


def _require_admin(platform: str) -> None:
    if platform != "windows" and os.geteuid() != 0:
        raise ConfigError("run this as root (sudo meshprint edge …): it registers a system service")


def _ensure_user(platform: str, data: Path) -> None:
    """Linux: the system user the unit runs as, owning the data directory. macOS: the
    daemon runs as root (launchd's system domain). Windows: SYSTEM and Administrators
    only on the data directory (there are no POSIX modes there)."""
    runner = bootservice.run
    if platform == "linux":
        user = bootservice.LINUX_USER
        if runner(["id", "-u", user]).returncode != 0:
            made = runner(
                ["useradd", "--system", "--user-group", "--no-create-home",
                 "--home-dir", str(data), "--shell", "/usr/sbin/nologin", user]
            )  # fmt: skip
            if made.returncode != 0:
                raise ConfigError(f"cannot create the user {user}: {made.stderr.strip()}")
        chown = runner(["chown", "-R", f"{user}:{user}", str(data)])
        if chown.returncode != 0:
            raise ConfigError(f"cannot give {data} to {user}: {chown.stderr.strip()}")
    elif platform == "windows":
        acl = runner(
            ["icacls", str(data), "/inheritance:r", "/grant:r",
             "*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F"]
        )  # fmt: skip
        if acl.returncode != 0:
            raise ConfigError(f"cannot restrict {data} to SYSTEM and Administrators: {acl.stderr}")


def cmd_edge_install(args: argparse.Namespace) -> None:
    from appliance.site.enroll import join_site

    platform = _platform()
    _require_admin(platform)
    data = _data(args, platform)
    service = bootservice.BootService(platform, root=Path(args.root))
    if DataDir(data).exists():
        raise ConfigError(
            f"{data} is already a node of a site: see 'meshprint edge status'; to join "
            "another site, 'meshprint edge uninstall' first"
        )
    identity = join_site(DataDir(data), args.token, "edge", args.name, args.host)
    print(f"Joined site {identity.site_id} as edge node {identity.node_id} ({data}).")
    _ensure_user(platform, data)
    service.install(bootservice.node_command(sys.executable, data), data)
    print(f"Registered and started: {service.definition_path}")
    print("It starts at every boot. See it with: meshprint edge status")


def cmd_edge_status(args: argparse.Namespace) -> None:
    from appliance.mesh import handoff

    platform = _platform()
    data = _data(args, platform)
    state = bootservice.BootService(platform, root=Path(args.root)).state()
    print(f"service: {'registered' if state.registered else 'not registered'} ({state.detail})")
    print(f"running: {'yes' if state.running else 'no'}")
    node = DataDir(data)
    if not node.exists():
        print(f"member: no ({data} holds no node)")
        return
    identity = node.identity()
    print(f"member: edge node {identity.node_id} of site {identity.site_id} ({data})")
    found = handoff.mesh_status(node)
    if found is None:
        print("live in the mesh: unknown (no other member answers)")
        return
    asked, status = found
    mine = next((m for m in status["members"] if m["id"] == identity.node_id), None)
    if mine is None:
        print(f"live in the mesh: no ({asked} does not list this node: removed from the site?)")
    else:
        jobs = "" if mine["jobs"] is None else f", holding {mine['jobs']} job(s)"
        print(f"live in the mesh: {'yes' if mine['live'] else 'no'}, as {asked} sees it{jobs}")


def cmd_edge_uninstall(args: argparse.Namespace) -> None:
    from appliance.mesh import handoff

    platform = _platform()
    _require_admin(platform)
    data = _data(args, platform)
    service = bootservice.BootService(platform, root=Path(args.root))
    node = DataDir(data)
    if node.exists():
        held = handoff.held_here(node)
        service.stop()  # the others see it gone and repair its copies elsewhere
        print(
            f"Stopped the node; waiting for the site to copy its {held} job(s) to other "
            f"members (up to {args.timeout:.0f} s: the repair starts after the site's grace "
            "period)…",
            flush=True,
        )
        last: list[tuple[int, int]] = []

        def report(p: handoff.Progress) -> None:
            if p.asked is not None and [(p.held, p.under_replicated)] != last:
                last[:] = [(p.held, p.under_replicated)]
                print(f"  {p.under_replicated} of {p.held} job(s) under three copies", flush=True)

        progress = handoff.wait_handed_off(node, args.timeout, args.poll, report)
        if not progress.done:
            why = (
                "no other member answers"
                if progress.asked is None
                else f"{progress.under_replicated} job(s) are still on fewer than three copies"
            )
            raise Unavailable(
                f"{why}; nothing was removed and the node stays stopped: run 'meshprint "
                "edge uninstall' again later (or start the service again to keep holding)"
            )
        print("Every job is on three other members.")
    service.remove()
    if node.exists():
        shutil.rmtree(data)
        print(f"Removed {data}.")
    print(
        "The service is removed. Ask the site admin to remove this node from the site: "
        "meshprint member remove NODE (on the controller)."
    )


def _where(p: argparse.ArgumentParser, default: str) -> None:
    """--data, and --root for tests (where the service definition is written)."""
    p.add_argument("--data", metavar="DIR", help=f"the node's data directory (default: {default})")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    edge = sub.add_parser(
        "edge", help="run this PC as an edge node at boot: install, status, uninstall"
    )
    esub = edge.add_subparsers(dest="edge_command", required=True, metavar="ACTION")
    default = "the platform's place: /var/lib/meshprint-edge, /Library/Application Support/"
    default += "meshprint, %%ProgramData%%\\meshprint"

    p = command(
        esub,
        "install",
        cmd_edge_install,
        "join the site with a token from 'meshprint invite' and register the node to "
        "start at boot (systemd, launchd, Windows Task Scheduler)",
    )
    p.add_argument("token", help="the one-time join token")
    _where(p, default)
    p.add_argument("--name", help="a name for this node (default: the host name)")
    p.add_argument("--host", help="an address to put in this node's certificate")

    p = command(
        esub,
        "status",
        cmd_edge_status,
        "whether the node is registered, running and live in the mesh",
    )
    _where(p, default)

    p = command(
        esub,
        "uninstall",
        cmd_edge_uninstall,
        "hand this PC's copies to other members, then remove the service and its data",
    )
    _where(p, default)
    p.add_argument(
        "--timeout",
        type=float,
        default=HANDOFF_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the copies to be rebuilt elsewhere "
        f"(default {HANDOFF_TIMEOUT:.0f})",
    )
    p.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)
