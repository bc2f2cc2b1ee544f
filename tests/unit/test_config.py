"""appliance.config: durations, sizes and validated site settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.config import (
    LIMITS,
    SiteSettings,
    parse_duration,
    parse_size,
)
from appliance.errors import ConfigError
from appliance.humanize import format_duration

K, M, G, T = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("8h", 8 * 3600),
        ("3d", 3 * 86400),
        ("1.5h", 5400),
        ("0.5m", 30),
        ("8H", 8 * 3600),
        ("  45 M ", 45 * 60),
        ("0", 0),
        (120, 120),
        (2.9, 2),
    ],
)
def test_parse_duration(text: str | int | float, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "8x", "-5m", "8 hours", "1h30m", "5ms", "1e3", "m8"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", M),
        ("100b", 100),
        ("100B", 100),
        ("512K", 512 * K),
        ("512k", 512 * K),
        ("512KB", 512 * K),
        ("512KiB", 512 * K),
        ("512M", 512 * M),
        ("2G", 2 * G),
        ("2gib", 2 * G),
        ("1T", T),
        ("1.5M", 3 * M // 2),
        (" 64 M ", 64 * M),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "12X", "-1K", "1P", "1 mega", "5MiBs", "0x10"])
def test_parse_size_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match="not a size"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_defaults() -> None:
    settings = SiteSettings()
    assert settings.retention == 8 * 3600
    assert settings.describe() == {
        "retention": "8h",
        "repair_grace": "10m",
        "max_job_size": "512M",
        "disk_reserve": "64M",
        "edge_budget": "2G",
    }


def test_from_dict_parses_human_units() -> None:
    settings = SiteSettings.from_dict(
        {"retention": "2h", "repair_grace": "90s", "max_job_size": "1G", "disk_reserve": 0}
    )
    assert settings == SiteSettings(retention=7200, repair_grace=90, max_job_size=G, disk_reserve=0)
    assert settings.describe() == {
        "retention": "2h",
        "repair_grace": "90s",
        "max_job_size": "1G",
        "disk_reserve": "0B",
        "edge_budget": "2G",
    }


def test_from_dict_fills_in_defaults_and_round_trips() -> None:
    assert SiteSettings.from_dict({}) == SiteSettings()
    changed = SiteSettings(retention=3600, max_job_size=5 * M + 3)
    assert SiteSettings.from_dict(changed.to_dict()) == changed
    assert changed.describe()["max_job_size"] == f"{5 * M + 3}B"


def test_from_dict_refuses_unknown_settings() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'") as err:
        SiteSettings.from_dict({"retention": "1h", "colour": "blue"})
    for name in LIMITS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"retention": "29m"}, "retention must be between 30m and 3d (got 29m)"),
        ({"retention": "73h"}, "retention must be between 30m and 3d (got 73h)"),
        ({"retention": "4d"}, "retention must be between 30m and 3d (got 4d)"),
        ({"repair_grace": "4s"}, "repair_grace must be between 5s and 7d"),
        ({"max_job_size": "1000"}, "max_job_size must be between 1K and 64T (got 1000B)"),
        ({"disk_reserve": "2T"}, "disk_reserve must be between 0B and 1T (got 2T)"),
    ],
)
def test_from_dict_refuses_values_out_of_bounds(data: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        SiteSettings.from_dict(data)
    assert message in str(err.value)


def test_from_dict_refuses_unparsable_values() -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        SiteSettings.from_dict({"retention": "soon"})
    with pytest.raises(ConfigError, match="not a size"):
        SiteSettings.from_dict({"max_job_size": "big"})


@pytest.mark.parametrize("value", ["30m", "1800", "3d", "72h", "8h"])
def test_changed_accepts_retention_within_bounds(value: str) -> None:
    settings = SiteSettings()
    new = settings.changed("retention", value)
    assert new.retention == parse_duration(value)
    assert settings.retention == 8 * 3600  # the original is untouched
    assert new.max_job_size == settings.max_job_size


@pytest.mark.parametrize("value", ["29m", "1799", "1m", "0", "3d1s", "73h", "4d"])
def test_changed_refuses_retention_outside_bounds(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        SiteSettings().changed("retention", value)
    message = str(err.value)
    if "not a duration" not in message:
        assert "30m" in message
        assert "3d" in message
        assert message.startswith("retention must be between")


def test_changed_accepts_dashes_and_sizes() -> None:
    new = SiteSettings().changed("max-job-size", "2G").changed("repair-grace", "1h")
    assert new.max_job_size == 2 * G
    assert new.repair_grace == 3600
    assert new.describe()["max_job_size"] == "2G"
    assert new.describe()["repair_grace"] == "1h"


@pytest.mark.parametrize("name", ["colour", "retention_", "", "max job size"])
def test_changed_refuses_unknown_settings(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown setting") as err:
        SiteSettings().changed(name, "1h")
    assert "retention" in str(err.value)
