"""appliance.ratelimit: the one sign-in limiter of the web UI and the /v1 APIs."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.crypto.userkeys import KdfBusy, WrongPassword
from appliance.errors import BadRequest, TooManyRequests
from appliance.ratelimit import LOOPBACK, Limiter, MemoryAttempts


def limiter(limit: int = 3, window: float = 60) -> Limiter:
    return Limiter(MemoryAttempts(), limit, window, exempt=LOOPBACK)


def guess(lim: Limiter, address: str, user: str, right: bool = False) -> str:
    """One sign-in through the guard; what the caller saw."""
    try:
        with lim.attempt("password", address, user, failure=WrongPassword):
            if not right:
                raise WrongPassword("wrong user name or password")
        return "ok"
    except TooManyRequests as err:
        assert err.retry_after is not None and 0 < err.retry_after <= 60
        return "429"
    except WrongPassword:
        return "401"


def test_wrong_guesses_are_limited_per_account_across_addresses() -> None:
    lim = limiter()
    seen = [guess(lim, f"10.0.0.{i}", "alice") for i in range(5)]
    assert seen == ["401", "401", "401", "429", "429"]
    assert guess(lim, "10.0.0.9", "alice", right=True) == "429"  # even the right one, for now
    assert guess(lim, "10.0.0.9", "bob", right=True) == "ok"


def test_spraying_many_accounts_from_one_address_is_limited() -> None:
    lim = limiter()
    seen = [guess(lim, "10.0.0.7", f"user{i}") for i in range(5)]
    assert seen == ["401", "401", "401", "429", "429"]
    assert guess(lim, "10.0.0.8", "user9", right=True) == "ok"


def test_a_success_forgives_only_itself() -> None:
    """An attacker cannot reset their address's count by signing in to their own account."""
    lim = limiter()
    assert [guess(lim, "10.0.0.7", f"victim{i}") for i in range(2)] == ["401", "401"]
    for _ in range(5):
        assert guess(lim, "10.0.0.7", "mallory", right=True) == "ok"
    assert guess(lim, "10.0.0.7", "victim3") == "401"
    assert guess(lim, "10.0.0.7", "victim4") == "429"


def test_a_request_that_never_checked_the_password_costs_nothing() -> None:
    lim = limiter()
    for err in (KdfBusy("busy"), BadRequest("bad job id")):
        for _ in range(5):
            with pytest.raises(type(err)), lim.attempt("password", "10.0.0.7", "alice"):
                raise err
    assert guess(lim, "10.0.0.7", "alice", right=True) == "ok"


def test_failures_age_out_of_the_window() -> None:
    lim = limiter(limit=2, window=0.3)
    assert [guess(lim, "10.0.0.7", "alice") for _ in range(3)] == ["401", "401", "429"]
    time.sleep(0.35)
    assert guess(lim, "10.0.0.7", "alice", right=True) == "ok"


def test_loopback_is_limited_per_account_only() -> None:
    """The web release page calls from loopback for everyone: one person's typos there
    must not lock out the others (the page limits by the real address itself)."""
    lim = limiter()
    assert [guess(lim, "127.0.0.1", f"user{i}") for i in range(6)] == ["401"] * 6
    assert [guess(lim, "127.0.0.1", "alice") for _ in range(4)] == ["401"] * 3 + ["429"]
    assert [guess(lim, "127.0.0.2", f"u{i}") for i in range(4)] == ["401"] * 3 + ["429"]


def test_concurrent_guesses_are_counted_before_they_are_checked() -> None:
    """A thousand guesses at once cannot all slip in before the first failure counts."""
    lim = limiter(limit=5)
    inside, release = [0], threading.Event()
    lock = threading.Lock()
    seen: list[str] = []

    def one() -> None:
        try:
            with lim.attempt("password", "10.0.0.7", "alice", failure=WrongPassword):
                with lock:
                    inside[0] += 1
                release.wait(5)
                raise WrongPassword("no")
        except TooManyRequests:
            seen.append("429")
        except WrongPassword:
            seen.append("401")

    threads = [threading.Thread(target=one) for _ in range(100)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert inside[0] == 5
    release.set()
    for thread in threads:
        thread.join()
    assert sorted(seen) == ["401"] * 5 + ["429"] * 95


def test_memory_attempts_stay_bounded() -> None:
    attempts = MemoryAttempts(max_keys=100)
    for i in range(1000):
        attempts.fail(f"password:name:u{i}")
    assert len(attempts) == 100
    assert attempts.failures("password:name:u999", 60)[0] == 1
    assert attempts.failures("password:name:u0", 60)[0] == 0  # the oldest went first
    for _ in range(5000):
        attempts.fail("password:ip:10.0.0.7")
    assert attempts.failures("password:ip:10.0.0.7", 60)[0] == 1000  # capped per key
    attempts.forget("password:ip:10.0.0.7")
    assert attempts.failures("password:ip:10.0.0.7", 60)[0] == 999
    attempts.clear("password:ip:10.0.0.7")
    assert attempts.failures("password:ip:10.0.0.7", 60) == (0, 0.0)
