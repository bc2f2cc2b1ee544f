"""What the site's administrator does, on the controller: users, members, invitations
and settings (printers: `appliance.printers.registry`). The command line and the web UI
both call these functions; each edits the signed directory in one transaction and raises
a MeshprintError the person can act on (bad input changes nothing).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from appliance.config import LIMITS, SiteSettings
from appliance.crypto.password_policy import check_password
from appliance.crypto.userkeys import b64, create_user_key
from appliance.datadir import DataDir
from appliance.errors import BadRequest, ConfigError, NotFound
from appliance.site import grants, printer_urls, recovery, release_authority
from appliance.site.ca import sha256_hex
from appliance.site.directory import NodeRecord, check_alias, check_user_name
from appliance.site.state import SiteState
from appliance.site.tokens import JoinToken

MAX_INVITE_TTL = 7 * 86400


def _user_entry(name: str, password: str) -> tuple[dict[str, Any], str]:
    """A user's directory entry for `password` (checked against the password policy),
    and their new submit token. It has a new personal printer URL too (sealed to the new
    key: a new password replaces the URL)."""
    check_password(password, name)
    public, wrapped = create_user_key(password)
    token = secrets.token_urlsafe(24)
    entry: dict[str, Any] = {
        "public_key": b64(public),
        "wrapped_key": wrapped.to_dict(),
        "token_hash": sha256_hex(token.encode()),
    }
    entry[printer_urls.FIELD] = printer_urls.new_entry(entry["public_key"])[0]
    return entry, token


def add_user(site: SiteState, name: str, password: str) -> str:
    """Add a user; returns their submit token (shown once)."""
    name = check_user_name(name)
    if site.directory().user(name) is not None:
        raise BadRequest(f"user {name} already exists")
    entry, token = _user_entry(name, password)

    def add(doc: dict[str, Any]) -> None:
        if name in doc["users"]:
            raise BadRequest(f"user {name} already exists")
        _check_name_free(doc, name, name)
        doc["users"][name] = entry

    site.edit(add)
    return token


def reset_password(site: SiteState, name: str, password: str) -> str:
    """Give a user a new password (and so a new key pair and submit token).

    Their held jobs were sealed to the old key: they can no longer release them with the
    new password (an admin can still release them with a signed command)."""
    if site.directory().user(name) is None:
        raise NotFound(f"no user {name}")
    entry, token = _user_entry(name, password)

    def change(doc: dict[str, Any]) -> None:
        if name not in doc["users"]:
            raise NotFound(f"no user {name}")
        entry["aliases"] = doc["users"][name].get("aliases", [])
        doc["users"][name] = entry

    site.edit(change)
    return token


def _check_name_free(doc: dict[str, Any], name: str, wanted: str) -> None:
    """BadRequest if `wanted` is already another user's name or alias (so a job's user
    name finds one user only)."""
    for other, record in doc["users"].items():
        if other != name and (wanted == other or wanted in (record.get("aliases") or ())):
            raise BadRequest(f"“{wanted}” is already {other}'s name or alias")


def printer_url(site: SiteState, name: str, rotate: bool) -> str | None:
    """With `rotate`: a new personal printer URL secret for `name` (the old one stops
    working at once); returned to show. Without: None (the secret is kept only as a hash
    and sealed to the user's key; NotFound for no such user)."""
    user = site.directory().user(name)
    if user is None:
        raise NotFound(f"no user {name}")
    if not rotate:
        return None
    entry, secret = printer_urls.new_entry(user.public_key)

    def change(doc: dict[str, Any]) -> None:
        record = doc["users"].get(name)
        if record is None:
            raise NotFound(f"no user {name}")
        if record["public_key"] != user.public_key:
            raise BadRequest(f"{name}'s password changed meanwhile: try again")
        record[printer_urls.FIELD] = entry

    site.edit(change)
    return secret


def revoke_printer_url(site: SiteState, name: str) -> None:
    """`name` has no personal printer URL any more (until one is made again)."""

    def change(doc: dict[str, Any]) -> None:
        record = doc["users"].get(name)
        if record is None:
            raise NotFound(f"no user {name}")
        record[printer_urls.FIELD] = None  # revoked (absent: made before there were any)

    site.edit(change)


def set_alias(site: SiteState, name: str, alias: str, remove: bool = False) -> list[str]:
    """Give `name` the extra name `alias` (or take it away); their aliases now."""
    wanted = check_alias(alias)
    if site.directory().user(name) is None:
        raise NotFound(f"no user {name}")

    def change(doc: dict[str, Any]) -> None:
        record = doc["users"].get(name)
        if record is None:
            raise NotFound(f"no user {name}")
        aliases = list(record.get("aliases") or ())
        if remove:
            if wanted not in aliases:
                raise NotFound(f"{name} has no alias “{wanted}”")
            aliases.remove(wanted)
        else:
            if wanted == name or wanted in aliases:
                raise BadRequest(f"{name} is called “{wanted}” already")
            _check_name_free(doc, name, wanted)
            aliases.append(wanted)
        record["aliases"] = sorted(aliases)

    site.edit(change)
    user = site.directory().user(name)
    return list(user.aliases) if user else []


def remove_user(site: SiteState, name: str) -> None:
    def remove(doc: dict[str, Any]) -> None:
        if doc["users"].pop(name, None) is None:
            raise NotFound(f"no user {name}")

    site.edit(remove)


def invite(data: DataDir, site: SiteState, ttl: int) -> JoinToken:
    """A one-time join token for a new node, valid `ttl` seconds."""
    if not data.is_controller:
        raise ConfigError("invite on the site controller (the node that created the site)")
    if not 1 <= ttl <= MAX_INVITE_TTL:
        raise ConfigError("a join token is valid between 1s and 7d")
    directory = site.directory()
    me = directory.node(directory.controller_id)
    assert me is not None
    if not me.reachable:
        raise ConfigError(
            f"start the node first (meshprint node --data {data.root}) so the "
            "token can carry its address"
        )
    token = JoinToken.new(
        site.site_id, f"{me.host}:{me.submit_port}", site.ca.fingerprint, time.time() + ttl
    )
    site.add_token(token.secret, token.expires, grants.seal(site.ca, token.secret, site.site_id))
    return token


def new_recovery_key(site: SiteState, current: str | None) -> str:
    """Seal the site authority and the release authority under a new recovery key (the
    old one stops working); the key, to show once. The release authority is opened with
    the `current` key; a site without one gets its first (then `current` may be None)."""
    doc = site.directory().doc
    if release_authority.FIELD in doc:
        if current is None:
            raise ConfigError("give the current recovery key: it unlocks the release authority")
        authority = release_authority.unlock(doc, site.site_id, current)
    else:
        authority = release_authority.ReleaseAuthority.create()
    key = recovery.new_recovery_key()
    sealed = release_authority.sealed_entries(site.ca, authority, site.site_id, key)
    site.edit(lambda doc: doc.update(sealed))
    return key


def bring_up_to_date(site: SiteState) -> list[str]:
    """On the controller at start: sign a directory made by an older version again so it
    carries what this version's members and clients expect (the member list, member
    points) where the CA key is still in the clear (an older controller; else the next
    administrator action does, `SiteState.edit`); what the administrator must do about
    the rest, as warnings."""
    directory = site.directory()
    unpointed = any(n.point is None for n in directory.nodes.values())
    # Users from before personal printer URLs get one (`SiteState.edit` gives it).
    unurled = any(printer_urls.FIELD not in r for r in directory.doc["users"].values())
    warnings = []
    if directory.membership() is None or unpointed or unurled:
        if site.ca.key is not None:  # a controller from before the CA key was sealed
            site.edit(lambda doc: None)  # every version has the member list and points
        else:
            warnings.append(
                "this directory was made by an older version: the next administrator action "
                "signs it again with the member list, member points and personal printer URLs"
            )
    if "recovery" not in directory.doc or release_authority.FIELD not in directory.doc:
        warnings.append(
            "this site has no recovery key and release authority yet, so it cannot be "
            "restored if this controller is lost and its CA key still signs release "
            "commands: run 'meshprint site recovery-key' and keep the key it prints"
        )
    return warnings


def remove_member(site: SiteState, node_id: str) -> NodeRecord:
    """Remove a node and revoke its certificate; returns what it was."""
    directory = site.directory()
    record = directory.node(node_id)
    if record is None:
        raise NotFound(f"no member {node_id}")
    if record.id == directory.controller_id:
        raise BadRequest("the controller cannot remove itself")

    def remove(doc: dict[str, Any]) -> None:
        del doc["nodes"][record.id]
        doc["revoked"] = sorted({*doc["revoked"], record.cert_serial})

    site.edit(remove)
    return record


def set_budget(site: SiteState, node_id: str, value: str) -> NodeRecord:
    """Give member `node_id` its own disk budget (a size, e.g. 5G), or the site's again
    (`site`)."""
    record = site.directory().node(node_id)
    if record is None:
        raise NotFound(f"no member {node_id}")
    budget = None if value == "site" else LIMITS["edge_budget"].parse("budget", value)

    def change(doc: dict[str, Any]) -> None:
        doc["nodes"][node_id]["budget"] = budget

    site.edit(change)
    updated = site.directory().node(node_id)
    assert updated is not None
    return updated


def change_settings(site: SiteState, values: dict[str, str]) -> SiteSettings:
    """Change several settings at once: all valid, or nothing changes."""
    new = site.directory().settings
    for key, value in values.items():
        new = new.changed(key, value)
    if new != site.directory().settings:
        site.edit(lambda doc: doc.__setitem__("settings", new.to_dict()))
    return new
