"""Site operations the setup wizard and the console share: printers (discover, add, test),
users (add one, import a CSV), join tokens, upstream broker. Each wraps the appliance
functions the command line uses (appliance.site.admin, appliance.printers)."""

from __future__ import annotations

import csv
import io
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from werkzeug.datastructures import FileStorage

from appliance.config import parse_duration
from appliance.errors import BadRequest, MeshprintError
from appliance.hostname import check_host
from appliance.printers import registry
from appliance.printers.registry import SnmpConfig, new_printer
from appliance.site import admin
from appliance.site.tokens import JoinToken
from webui.context import data, event, site, store

CSV_MAX_ROWS = 500
DISCOVERY_CACHE = 30.0
_discovered: dict[str, tuple[float, list[dict[str, Any]]]] = {}
_discover_lock = threading.Lock()
OWN_QUEUE = "/printers/Secure_Print"  # earlier releases' CUPS queue
# What meshprint's own printer says it is (printer-make-and-model, DNS-SD `ty`:
# appliance/intake/ipp/attributes.py); its path /ipp/print is every IPP printer's.
OWN_PRINTER = "meshprint Secure Print"
URI_PREFERENCE = {"ipp": 0, "ipps": 1, "socket": 2}


def slug(text: str) -> str:
    """A printer name from what discovery found: lower case, '-' between words."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:40]
    return name or "printer"


def discover(fresh: bool = False) -> list[dict[str, Any]]:
    """Printers on the network (DNS-SD), with a suggested name and URI, cached briefly."""
    from appliance.printers.discover import discover as find

    key = str(data().root)
    with _discover_lock:
        cached = _discovered.get(key)
        if cached and not fresh and time.time() - cached[0] < DISCOVERY_CACHE:
            return cached[1]
        found = find(env=current_app.config.get("DISCOVERY_ENV"))
        known = {p.uri for p in registry.printers(site().directory().doc).values()}
        items = []
        for item in found:
            uris = sorted(item.uris, key=lambda u: URI_PREFERENCE.get(u.split(":")[0], 9))
            if not uris or any(OWN_QUEUE in u for u in uris) or item.make_and_model == OWN_PRINTER:
                continue  # nothing usable, or meshprint's own printer (a loop)
            items.append(
                {
                    **item.to_dict(),
                    "suggested": slug(item.name),
                    "uri": uris[0],
                    "added": any(u in known for u in item.uris),
                }
            )
        _discovered[key] = (time.time(), items)
        return items


def add_printer(form: dict[str, str]) -> tuple[registry.PrinterRecord, str]:
    """Add the printer of the form after checking its address; what was found there. An
    address where nothing answers is refused (PrinterUnreachable, saying so) unless the
    form says `anyway` (a printer that is switched off today)."""
    from appliance.printers.check import check_before_adding

    snmp = None
    if form.get("snmp", "").strip():
        snmp = SnmpConfig.parse(form["snmp"].strip(), form.get("community") or None, None)
    record = new_printer(
        form.get("name", "").strip(),
        form.get("uri", "").strip(),
        form.get("location", ""),
        snmp,
        label=form.get("label", ""),
    )
    registry.check_new(site().directory().doc, record.name)
    if form.get("anyway") == "on":
        said = "added without checking its address"
    else:
        found = check_before_adding(record)
        if found.refused:
            stop = "" if found.said.endswith(("?", ".", "!")) else "."
            raise BadRequest(
                f"{record.name} was not added: {found.said}{stop} Tick “Add without "
                "checking” to add a printer that is switched off now."
            )
        said = found.said
    registry.add_printer(site(), record)
    _discovered.clear()
    event("printer", f"printer {record.display_name} added ({record.uri}): {said}")
    return record, said


def test_printer(name: str) -> dict[str, Any]:
    """Check a printer and print a test page on it; the report as a dict."""
    from appliance.printers.check import check

    record = registry.find(site().directory().doc, name)
    report = check(record, test_page=True).to_dict()
    outcome = report["test_page"] or "; ".join(report["problems"]) or "not printed"
    event("printer", f"test page on {name}: {outcome}")
    return report


@dataclass
class NewUser:
    name: str
    token: str
    password: str | None = None  # only when it was generated here


def add_user(name: str, password: str, confirm: str | None = None) -> NewUser:
    if confirm is not None and password != confirm:
        raise BadRequest("the two passwords differ")
    token = admin.add_user(site(), name.strip(), password)
    event("user", f"user {name.strip()} added")
    return NewUser(name.strip(), token)


def import_users(upload: FileStorage | None) -> tuple[list[NewUser], list[str]]:
    """Users from an uploaded CSV file: a `name` column and an optional `password` column (a
    random password is made for empty ones). All rows are checked first; nothing is added
    unless every row is valid."""
    if upload is None or not upload.filename:
        raise BadRequest("choose a CSV file to import")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV file must be UTF-8 text") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise BadRequest("the CSV file is empty: put one user per line, as name,password")
    header = [c.strip().lower() for c in rows[0]]
    if "name" in header:
        rows = rows[1:]
        name_col = header.index("name")
        pw_col = header.index("password") if "password" in header else None
    else:
        name_col, pw_col = 0, 1
    if len(rows) > CSV_MAX_ROWS:
        raise BadRequest(f"import at most {CSV_MAX_ROWS} users at a time")
    from appliance.crypto.password_policy import check_password
    from appliance.site.directory import check_user_name

    existing = set(site().directory().users)
    planned: list[tuple[str, str, bool]] = []
    errors: list[str] = []
    for number, row in enumerate(rows, start=2 if "name" in header else 1):
        name = row[name_col].strip() if len(row) > name_col else ""
        password = row[pw_col].strip() if pw_col is not None and len(row) > pw_col else ""
        generated = not password
        password = password or secrets.token_urlsafe(9)
        try:
            check_user_name(name)
            check_password(password, name)
            if name in existing or any(p[0] == name for p in planned):
                raise BadRequest(f"user {name} already exists")
        except MeshprintError as err:
            errors.append(f"line {number}: {err}")
            continue
        planned.append((name, password, generated))
    if errors:
        return [], errors
    added = []
    for name, password, generated in planned:
        token = admin.add_user(site(), name, password)
        added.append(NewUser(name, token, password if generated else None))
    event("user", f"{len(added)} users imported from CSV")
    return added, []


def invite(ttl: str = "1h") -> JoinToken:
    token = admin.invite(data(), site(), parse_duration(ttl))
    event("node", "join token created")
    return token


UPSTREAM_SCHEMES = ("mqtts", "ssl", "mqtt", "tcp")


def check_upstream(url: str) -> str:
    """An upstream MQTT broker URL (mqtts://HOST[:PORT]), or '' for none."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in UPSTREAM_SCHEMES or not parts.hostname or port == -1:
        raise BadRequest(
            "the upstream broker is an address like mqtts://broker.example.com:8883 "
            "(leave it empty for none)"
        )
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise BadRequest("give only the broker's address: no user, password or path in it")
    check_host(parts.hostname)
    return f"{parts.scheme}://{parts.hostname}{f':{port}' if port else ''}"


def set_upstream(url: str) -> str:
    clean = check_upstream(url)
    store().put("upstream", clean)
    event("settings", f"upstream broker {'set to ' + clean if clean else 'removed'}")
    return clean


def check_timezone(zone: str) -> str:
    """A time zone name from the system's list (Europe/London); BadRequest otherwise."""
    import zoneinfo

    zone = zone.strip()
    if zone not in zoneinfo.available_timezones():
        raise BadRequest(f"{zone!r} is not a time zone: pick one from the list")
    return zone


def timezones() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones())
