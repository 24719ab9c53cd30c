"""Parsing of worker limits (``--memory 8G``, ``--tags gpu,big-ram``) and resource names.

Limits become Ray resources so they are enforced by Ray's scheduler, not just advertised:
tags are custom resources named ``tag:NAME``; ``--max-concurrent`` is a pool of ``soma_slot``
units of which every Soma job takes one.
"""

from __future__ import annotations

import re

from soma.errors import ValidationError

__all__ = [
    "SLOT_RESOURCE",
    "TAG_CAPACITY",
    "parse_memory",
    "parse_tags",
    "tag_resource",
]

SLOT_RESOURCE = "soma_slot"
# A tagged node holds this many units of its tag; a job needing the tag takes one, so tags
# route work without limiting concurrency (that is --max-concurrent's job).
TAG_CAPACITY = 10_000

_BINARY = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_memory(text: str, field: str = "--memory") -> int:
    """``"8G"``, ``"8GB"``, ``"8GiB"``, ``"512M"`` or a byte count -> bytes (binary units).

    "8GB" is read as 8 GiB: worker limits are binary everywhere in Soma, and a limit that
    rounds to 0 bytes is refused rather than silently meaning "no memory".
    """
    match = _MEMORY_RE.match(str(text))
    if match is None:
        raise ValidationError(
            field, f"expected a size such as 8G, 512M or 8GiB (binary units), got {text!r}"
        )
    number, unit, suffix = match.groups()
    if suffix and suffix.upper() == "B" and not unit:
        unit = ""  # "1024B": plain bytes
    size = int(float(number) * _BINARY[unit.upper()])
    if size <= 0:
        raise ValidationError(field, f"expected a size above 0 bytes, got {text!r}")
    return size


def parse_tags(text: str | list[str] | tuple[str, ...] | None, field: str = "--tags") -> list[str]:
    """``"gpu,big-ram"`` (or a list) -> ``["big-ram", "gpu"]``, each tag checked."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    tags = sorted({item.strip() for item in items if item.strip()})
    for tag in tags:
        if not _TAG_RE.match(tag):
            raise ValidationError(
                field, f"expected tags of letters, digits, '-', '_' or '.', got {tag!r}"
            )
    return tags


def tag_resource(tag: str) -> str:
    return f"tag:{tag}"
