"""The appliance's setup code: how the person who plugged it in claims it.

A fresh appliance has no password. Its setup code (three groups of four characters from
an alphabet without look-alikes, e.g. ``K7QM-4TXP-9HCW``) is shown on the console, written
to the boot partition and printed by ``meshprint setup-code --data DIR``. The setup wizard
asks for it first. Once the wizard is finished the code is void (the file is removed and
a marker stays), so it can never claim the appliance again.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from appliance.datadir import private_once
from appliance.errors import Gone

ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"  # no 0/O, 1/I/L, 2/Z, 5/S, 8/B
GROUPS, GROUP_SIZE = 3, 4
CODE_FILE = "setup-code"
DONE_FILE = "setup-done"


def _new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS))
    return "-".join(groups)


def normalise(text: str) -> str:
    """What someone typed, in the code's form: upper case, no spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def is_done(data: Path) -> bool:
    return (Path(data) / DONE_FILE).exists()


def ensure(data: Path) -> str:
    """The setup code of the data directory `data`, created (mode 0600) if absent."""
    root = Path(data)
    if is_done(root):
        raise Gone("this appliance is already set up: sign in as its administrator")
    made = private_once(root / CODE_FILE, lambda: (_new_code() + "\n").encode())
    return made.decode().strip()


def check(data: Path, typed: str) -> bool:
    """Whether `typed` is the setup code (constant-time; False once setup is done)."""
    if is_done(data):
        return False
    try:
        code = (Path(data) / CODE_FILE).read_text().strip()
    except FileNotFoundError:
        return False
    return hmac.compare_digest(normalise(typed).encode(), normalise(code).encode())


def void(data: Path) -> None:
    """Setup is finished: remove the code for good."""
    root = Path(data)
    (root / DONE_FILE).write_text("the setup wizard was finished; the setup code is void\n")
    (root / CODE_FILE).unlink(missing_ok=True)
