"""Delivery drivers: send a decrypted document stream to a printer and track it.

Every driver takes the plaintext as an iterator of byte chunks and must never write it
to disk. `submit` returns once the printer (or CUPS) has accepted the whole document;
`progress` reports where it is. Errors are `appliance.printers.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from appliance.store.states import Stage as Stage  # the drivers report it


@dataclass(frozen=True)
class PrintOptions:
    copies: int = 1
    sides: str = "one-sided"
    color: bool = True
    media: str | None = None  # a PWG media name (iso_a4_210x297mm); None: the printer's default
    title: str = "meshprint job"
    user: str = "meshprint"
    document_format: str = "application/octet-stream"  # MIME type, e.g. application/pdf


@dataclass(frozen=True)
class Progress:
    stage: Stage
    reason: str = ""  # the printer's own words when it has any ("media-jam", …)
    # impressions the printer says it made (IPP job-impressions-completed, the SNMP
    # page counter's advance for RAW); None when it does not say
    impressions: int | None = None


@dataclass(frozen=True)
class Submitted:
    """What a driver needs to find the job again at the printer."""

    printer_job: str  # driver-specific: IPP job-id, CUPS job id, RAW receipt


class Driver(Protocol):
    def submit(
        self, document: Iterator[bytes], size: int | None, options: PrintOptions
    ) -> Submitted: ...

    def progress(self, submitted: Submitted) -> Progress: ...
