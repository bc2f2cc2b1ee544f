"""IPP messages as plain Python values.

A message is a version, an operation (request) or status (response) code, a request id
and attribute groups. Each attribute has a name, a value tag per value, and its values:

    integer, enum           int
    boolean                 bool
    text, name, keyword …   str (with-language forms: `LanguageString`, a str)
    octetString             bytes (also the raw value of unknown tags)
    dateTime                datetime (bytes if the printer sent an impossible date)
    resolution              Resolution
    rangeOfInteger          IntRange
    collection              dict of member name → Attribute
    out-of-band             OutOfBand (unknown, no-value, unsupported …)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Union

from appliance.printers.ipp.enums import DelimiterTag, Operation, Status, ValueTag


class OutOfBand(IntEnum):
    """An out-of-band value: the attribute is there, its value is not."""

    UNSUPPORTED = 0x10
    DEFAULT = 0x11
    UNKNOWN = 0x12
    NO_VALUE = 0x13
    NOT_SETTABLE = 0x15
    DELETE_ATTRIBUTE = 0x16
    ADMIN_DEFINE = 0x17


class LanguageString(str):
    """textWithLanguage / nameWithLanguage: a str that also knows its language."""

    language: str

    def __new__(cls, text: str, language: str) -> LanguageString:
        value = super().__new__(cls, text)
        value.language = language
        return value


@dataclass(frozen=True)
class IntRange:
    lower: int
    upper: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.lower <= value <= self.upper

    def __str__(self) -> str:
        return f"{self.lower}-{self.upper}"


@dataclass(frozen=True)
class Resolution:
    x: int
    y: int
    units: int = 3  # 3 = dots per inch, 4 = dots per centimetre

    def __str__(self) -> str:
        unit = {3: "dpi", 4: "dpcm"}.get(self.units, f"units{self.units}")
        return f"{self.x}{unit}" if self.x == self.y else f"{self.x}x{self.y}{unit}"


Value = Union[
    int,
    bool,
    str,
    bytes,
    datetime,
    IntRange,
    Resolution,
    OutOfBand,
    "dict[str, Attribute]",
]


@dataclass
class Attribute:
    """One attribute. `tags` holds one value tag per value (a 1setOf may mix tags, e.g.
    keyword and name); give just `tag` to use the same one for every value."""

    name: str
    tag: int
    values: list[Value]
    tags: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.tags:
            self.tags = (self.tag,) * len(self.values)
        elif len(self.tags) != len(self.values):
            raise ValueError(f"{self.name}: {len(self.tags)} tags for {len(self.values)} values")

    @property
    def value(self) -> Value:
        """The first value (an attribute always has at least one)."""
        return self.values[0]

    def __str__(self) -> str:
        return f"{self.name} ({ValueTag.describe(self.tag)}) = {self.values}"


@dataclass
class AttributeGroup:
    tag: int
    attributes: dict[str, Attribute] = field(default_factory=dict)

    def add(self, attribute: Attribute) -> None:
        self.attributes[attribute.name] = attribute

    def get(self, name: str) -> Attribute | None:
        return self.attributes.get(name)


@dataclass
class IppMessage:
    """A request (`code` is the operation) or a response (`code` is the status)."""

    code: int
    request_id: int = 1
    version: tuple[int, int] = (2, 0)
    groups: list[AttributeGroup] = field(default_factory=list)

    # --- building

    def group(self, tag: int) -> AttributeGroup:
        """The last group with this tag, added at the end if there is none."""
        for existing in reversed(self.groups):
            if existing.tag == tag:
                return existing
        new = AttributeGroup(tag)
        self.groups.append(new)
        return new

    # --- reading

    def groups_of(self, tag: int) -> list[AttributeGroup]:
        return [g for g in self.groups if g.tag == tag]

    def find(self, name: str, group: int | None = None) -> Attribute | None:
        """The first attribute with this name (in groups with tag `group`, if given)."""
        for g in self.groups:
            if (group is None or g.tag == group) and name in g.attributes:
                return g.attributes[name]
        return None

    def values(self, name: str, group: int | None = None) -> list[Value]:
        attribute = self.find(name, group)
        return list(attribute.values) if attribute else []

    def first(self, name: str, group: int | None = None) -> Value | None:
        attribute = self.find(name, group)
        return attribute.values[0] if attribute and attribute.values else None

    @property
    def operation(self) -> Operation | int:
        try:
            return Operation(self.code)
        except ValueError:
            return self.code

    @property
    def status(self) -> Status | int:
        try:
            return Status(self.code)
        except ValueError:
            return self.code

    @property
    def ok(self) -> bool:
        return Status.is_success(self.code)

    @property
    def status_message(self) -> str:
        value = self.first("status-message", DelimiterTag.OPERATION_ATTRIBUTES)
        return value if isinstance(value, str) else ""

    @property
    def unsupported_names(self) -> list[str]:
        """Names of the attributes the printer put in its unsupported-attributes group."""
        names: list[str] = []
        for g in self.groups_of(DelimiterTag.UNSUPPORTED_ATTRIBUTES):
            names.extend(g.attributes)
        return names

    def printer_attributes(self) -> dict[str, Attribute]:
        return self._merged(DelimiterTag.PRINTER_ATTRIBUTES)

    def job_attributes(self) -> dict[str, Attribute]:
        return self._merged(DelimiterTag.JOB_ATTRIBUTES)

    def _merged(self, tag: int) -> dict[str, Attribute]:
        merged: dict[str, Attribute] = {}
        for g in self.groups_of(tag):
            merged.update(g.attributes)
        return merged
