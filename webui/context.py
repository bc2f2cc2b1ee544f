"""What the views share: the data directory, the web UI store, the site (once created)
and a client for this node's local release API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import current_app, g

from appliance.clients.node import NodeClient
from appliance.datadir import DataDir
from appliance.errors import ConfigError
from appliance.https.client import Client
from appliance.node import DEFAULT_RELEASE_PORT, open_site
from appliance.site.state import SiteState
from appliance.site.tls import client_context
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
    if "site" not in g:
        _, g.site = open_site(data())
    return g.site  # type: ignore[no-any-return]


def release_api() -> NodeClient:
    """The node's release API on this machine (works with the internet down)."""
    address = current_app.config["RELEASE_API"] or f"127.0.0.1:{DEFAULT_RELEASE_PORT}"
    host, _, port = address.rpartition(":")
    return NodeClient(Client(host, int(port), client_context(data().ca_cert), timeout=30))


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


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "just now" if seconds < 10 else f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d {(seconds % 86400) // 3600} h"


def since(timestamp: float) -> str:
    """'just now', '5 min ago', '2 h ago'."""
    age = human_age(time.time() - timestamp)
    return age if age == "just now" else f"{age} ago"


def jinja_helpers() -> dict[str, Any]:
    from appliance.humanize import human_size

    return {
        "human_size": human_size,
        "human_age": human_age,
        "since": since,
        "local_time": local_time,
    }
