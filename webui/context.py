"""What the views share: the data directory, the web UI store, the site (once created)
and a client for this node's local release API."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from flask import current_app, g

from appliance.clients.node import NodeClient
from appliance.datadir import DataDir
from appliance.endpoint import DEFAULT_RELEASE_PORT
from appliance.errors import ConfigError, MeshprintError
from appliance.https.client import Client
from appliance.site import authority
from appliance.site.answering import member_check
from appliance.site.state import SiteState, open_site
from appliance.site.tls import client_context
from webui import unlock
from webui.store import Store

_stores: dict[Path, Store] = {}


def data() -> DataDir:
    root = current_app.config["MESHPRINT_DATA"]
    if not root:
        raise ConfigError("the web UI needs the node's data directory (MESHPRINT_DATA)")
    return DataDir(root)


def store() -> Store:
    path = data().root / "webui.db"
    if path not in _stores:
        _stores[path] = Store(path)
    return _stores[path]


def has_site() -> bool:
    return data().exists()


def site() -> SiteState:
    """The site, with its authority unlocked for this request when a signed-in
    administrator's session holds their admin key (`webui.unlock`)."""
    if "site" not in g:
        _, g.site = open_site(data())
        found = unlock.admin_key(store())
        if found is not None:
            # when it does not open, the site stays locked: a change then says what to do
            with contextlib.suppress(MeshprintError):
                authority.unlock_with_admin_key(data(), g.site, *found)
    return g.site  # type: ignore[no-any-return]


def release_api() -> NodeClient:
    """The node's release API on this machine (works with the internet down). Each
    connection first checks, against this data directory's site directory, that the node
    answering is a current, unrevoked member: a user's password goes to no other."""
    address = current_app.config["RELEASE_API"] or f"127.0.0.1:{DEFAULT_RELEASE_PORT}"
    host, _, port = address.rpartition(":")
    check = member_check(site().directory, address, "your password")
    return NodeClient(
        Client(host, int(port), client_context(data().ca_cert), timeout=30, check_peer=check)
    )


def event(kind: str, text: str) -> None:
    store().event(kind, text)


def local_time(timestamp: float) -> str:
    """A time in the site's time zone (set in the wizard), e.g. 'Tue 14:05'."""
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(store().get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return dt.datetime.fromtimestamp(timestamp, zone).strftime("%a %H:%M")


def jinja_helpers() -> dict[str, Any]:
    from appliance.humanize import human_duration, human_size, plain, since
    from appliance.printoptions import describe_options

    return {
        "describe_options": describe_options,
        "plain": plain,
        "human_size": human_size,
        "human_duration": human_duration,
        "since": since,
        "local_time": local_time,
    }
