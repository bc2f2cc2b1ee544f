"""The states a held job and a delivery go through (their values are what the database,
the APIs and the web UI carry)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    HELD = "held"
    # claimed by a release (`Job.release_id`) on the node delivering it (`delivery_node`)
    DELIVERING = "delivering"
    # that delivery was cut off: it may have printed, so only an explicit reprint releases
    # the job again
    UNKNOWN = "unknown"


class Stage(StrEnum):
    """Where one release to a printer is. A driver reports QUEUED to FAILED."""

    # recorded before the holders are claimed, so a delivering node that stops before
    # sending knows nothing was printed (and its holders learn so from its record)
    CLAIMING = "claiming"
    DELIVERING = "delivering"  # the document is on its way to the printer
    QUEUED = "queued"
    PRINTING = "printing"
    PRINTED = "printed"
    FAILED = "failed"
    UNKNOWN = "unknown"  # cut off or out of touch: it may have printed

    @property
    def settled(self) -> bool:
        """Whether the release has come to an end (nothing more will change by itself)."""
        return self in SETTLED


OPEN_STAGES = (Stage.CLAIMING, Stage.DELIVERING, Stage.QUEUED, Stage.PRINTING)
SETTLED = frozenset({Stage.PRINTED, Stage.FAILED, Stage.UNKNOWN})


class DeliveryStep(StrEnum):
    """What a delivering node tells the job's holders (peer API)."""

    CLAIM = "claim"
    UNCLAIM = "unclaim"
    UNKNOWN = "unknown"
