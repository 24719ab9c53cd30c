"""The data a project's loader returns: train / valid (/ test) splits, validated.

A loader (``data.py:load`` by default) takes no arguments and returns one of:

* ``{"train": (x, y), "valid": (x, y)}`` plus optionally ``"test": (x, y)``;
* a :class:`Splits` (``from soma.project import Splits``);
* a 4-tuple ``(x_train, y_train, x_valid, y_valid)`` or a 6-tuple that adds the test split.

Each split is an ``(x, y)`` pair whose lengths agree; ``x`` and ``y`` can be anything the
filters accept (numpy arrays, lists, data frames). The loaded splits carry a content
fingerprint (``soma.fingerprint.hash_value``) that experiments record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from soma.errors import ProjectError

__all__ = ["Splits", "coerce_splits"]

_SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Splits:
    """Train and validation (and optional test) data, each an ``(x, y)`` pair."""

    train: tuple[Any, Any]
    valid: tuple[Any, Any]
    test: tuple[Any, Any] | None = None
    fingerprint: str = ""  # content hash of all splits; filled by Project.load_data()

    def describe(self) -> str:
        """One line such as ``"train 1078 × 64, valid 359 × 64, test 360 × 64"``."""
        parts = []
        for name in _SPLIT_NAMES:
            split = getattr(self, name)
            if split is not None:
                parts.append(f"{name} {_shape(split[0])}")
        return ", ".join(parts)


def _shape(x: Any) -> str:
    shape = getattr(x, "shape", None)
    if shape is not None:
        return " × ".join(str(n) for n in shape)
    try:
        return str(len(x))
    except TypeError:
        return type(x).__name__


def coerce_splits(value: Any, source: str) -> Splits:
    """Validate what a loader returned; ProjectError naming the split otherwise."""
    if isinstance(value, Splits):
        parts = {n: getattr(value, n) for n in _SPLIT_NAMES}
    elif isinstance(value, Mapping):
        unknown = [str(k) for k in value if k not in _SPLIT_NAMES]
        if unknown:
            raise ProjectError(
                f"{source} returned unknown split(s) {', '.join(map(repr, unknown))}; "
                "expected 'train', 'valid' and optionally 'test'"
            )
        parts = {n: value.get(n) for n in _SPLIT_NAMES}
    elif isinstance(value, tuple | list) and len(value) in (4, 6):
        items = list(value)
        parts = {
            "train": (items[0], items[1]),
            "valid": (items[2], items[3]),
            "test": (items[4], items[5]) if len(items) == 6 else None,
        }
    else:
        raise ProjectError(
            f"{source} must return {{'train': (x, y), 'valid': (x, y)[, 'test': (x, y)]}}, "
            f"a soma.project.Splits or (x_train, y_train, x_valid, y_valid), "
            f"got {_kind(value)}"
        )
    checked: dict[str, Any] = {}
    for name in _SPLIT_NAMES:
        split = parts[name]
        if split is None:
            if name != "test":
                raise ProjectError(f"{source} returned no {name!r} split")
            checked[name] = None
            continue
        checked[name] = _check_pair(split, f"{source}: split {name!r}")
    return Splits(checked["train"], checked["valid"], checked["test"])


def _check_pair(split: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(split, tuple | list) or len(split) != 2:
        raise ProjectError(f"{where}: expected an (x, y) pair, got {_kind(split)}")
    x, y = split
    if x is None:
        raise ProjectError(f"{where}: x is None")
    n_x, n_y = _length(x), _length(y)
    if n_x == 0:
        raise ProjectError(f"{where}: x is empty")
    if n_x is not None and n_y is not None and n_x != n_y:
        raise ProjectError(f"{where}: x has {n_x} rows but y has {n_y}")
    return (x, y)


def _length(value: Any) -> int | None:
    if value is None:
        return None
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(value)
    except TypeError:
        return None


def _kind(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    return type(value).__name__


def with_fingerprint(splits: Splits, fingerprint: str) -> Splits:
    return dataclasses.replace(splits, fingerprint=fingerprint)
