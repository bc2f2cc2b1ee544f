"""What the APIs answer, as typed dictionaries (their JSON form, field for field)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class DeliveryInfo(TypedDict):
    """One release to a printer: where it is (delivering, queued, printing, printed,
    failed, unknown)."""

    release_id: str
    job_id: str
    printer: str
    stage: str
    printer_job: str | None
    reason: str
    updated_at: float


class JobInfo(TypedDict):
    """A held job's metadata (never a share or content)."""

    id: str
    owner: str
    title: str
    format: str
    size: int
    created_at: float
    expires_at: float
    holders: list[str]
    state: str
    release_id: str | None
    delivery_node: str | None
    reason: str
    options: dict[str, Any]
    holders_version: NotRequired[int]
    copies: NotRequired[list[str]]  # the nodes that answered with a copy (release API)
    deliveries: NotRequired[list[DeliveryInfo]]  # one job (release API)


class HolderJobInfo(JobInfo):
    """A holder's own record of a job, for the member that releases it (peer API)."""

    user_share: str
    holders_x: list[list[Any]]


class Receipt(JobInfo):
    """A submitted job, and the nodes where it is durable or still being copied to."""

    durable_on: list[str]
    replicating_to: list[str]
    under_replicated: bool


class ShareInfo(TypedDict):
    x: int
    share: str


class RepairPart(TypedDict):
    """A helping holder's masked part of a repaired holder's share, at its point."""

    x: int
    part: str


class SignedDirectory(TypedDict):
    raw: str
    signature: str
    addresses: NotRequired[list[dict[str, str]]]  # `appliance.site.addresses`
