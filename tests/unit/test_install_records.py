"""`meshprint intake install`'s DNS-SD record: the old queue's record, which has the same
name, is gone before the node's printer's record appears, so avahi never sees the two at
once (it would publish the later one as "Secure Print #2")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.intake import dnssd, install


def test_the_old_record_goes_before_the_new_one_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = tmp_path / "meshprint-secure-print.service", tmp_path / "meshprint-printer.service"
    old.write_text("<service-group><name>Secure Print</name></service-group>")
    monkeypatch.setattr(install, "printer_site", lambda settings: None)
    monkeypatch.setattr(dnssd, "printer_txt", lambda site: {"rp": "ipp/print"})
    seen: list[bool] = []
    write = install._write_if_changed

    def recording(path: Path, text: str, mode: int) -> Any:
        seen.append(old.exists())
        return write(path, text, mode)

    monkeypatch.setattr(install, "_write_if_changed", recording)
    settings = install.Settings(data=None, service_file=new, old_service_file=old)  # type: ignore[arg-type]
    changes = install.ensure_service(settings)
    assert seen == [False]
    assert not old.exists() and "<name>Secure Print</name>" in new.read_text()
    assert changes == [
        f"removed the old queue's DNS-SD record {old}",
        f"wrote the DNS-SD record {new}",
    ]
    assert install.ensure_service(settings) == []  # again: nothing changes
