"""The password policy: what a password must be wherever one is set (a site user's, the
web console's administrator's, the CLI's and the setup wizard's).

Every node holds every user's wrapped key, so a stolen edge PC is an offline guessing
oracle bounded only by the KDF cost: the policy's job is to keep passwords out of the
first guesses an attacker tries. A password is refused, with the reason, when it is

- shorter than MIN_LENGTH (10) characters: at 10 characters a random-ish password is
  out of reach of exhaustive search at a few guesses per second per core, and people
  can still type it on a phone; 8 (the old rule, NIST's floor with a second factor) left
  "password" and its kin in, and there is no second factor here;
- longer than MAX_LENGTH characters (a bound on what a sign-in makes the KDF hash);
- one of the 30,000 most common passwords (`common_passwords.txt`, from zxcvbn; see
  `common_passwords.LICENSE`), compared lower-cased, or one of them with digits or
  symbols added at the end ("Sunshine2024!"), the first rule a guessing tool applies;
- the user's name, or containing it.

The list is read at the first check, not at import.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from appliance.errors import BadRequest

MIN_LENGTH = 10
MAX_LENGTH = 1024
_SUFFIX = re.compile(r"[\d\W_]+$")
_MIN_BASE = 3  # a common word this long or longer, plus digits/symbols, is refused


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords (lower-case)."""
    text = importlib.resources.files(__package__).joinpath("common_passwords.txt")
    return frozenset(line for line in text.read_text("utf-8").splitlines() if line)


def check_password(password: str, user: str = "") -> None:
    """Refuse a password the policy does not allow, with a BadRequest saying why."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"the password must have at most {MAX_LENGTH} characters")
    folded = password.lower()
    name = user.strip().lower()
    if name and (folded == name or (len(name) >= _MIN_BASE and name in folded)):
        raise BadRequest("the password must not be or contain the user name")
    common = common_passwords()
    if folded in common:
        raise BadRequest(
            "this password is one of the most common ones, which are tried first: choose"
            " another (a few unrelated words make a good one)"
        )
    base = _SUFFIX.sub("", folded)
    if base != folded and len(base) >= _MIN_BASE and base in common:
        raise BadRequest(
            "this password is a common one with digits or symbols added at the end, which"
            " is tried early: choose another (a few unrelated words make a good one)"
        )
