"""One ``Splits`` (train / valid / optional test data) and the one data fingerprint."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from soma.errors import ProjectError, ValidationError

__all__ = ["Splits", "coerce_splits", "data_fingerprint", "splits_from_data"]

_SPLIT_NAMES = ("train", "valid", "test")


def data_fingerprint(
    train: tuple[Any, Any], valid: tuple[Any, Any], test: tuple[Any, Any] | None
) -> str:
    """The content hash every tool records as an experiment's ``data_fingerprint``.

    Always the same recipe (``hash_value`` of the three splits by name), so experiments
    from the MCP tool, a study, the CLI and the agent group by data in the knowledge base.
    """
    from soma.fingerprint import hash_value

    return hash_value({"train": tuple(train), "valid": tuple(valid), "test": _pair(test)})


def _pair(split: Any) -> Any:
    return None if split is None else tuple(split)


@dataclass(frozen=True, eq=False)
class Splits:
    """Train and validation (and optional test) data, each an ``(x, y)`` pair.

    ``has_validation`` is False when no validation split was given: ``valid`` is then the
    training data again (the metric is measured on what was fitted). ``fingerprint`` is
    :func:`data_fingerprint` of the splits, hashed on first use, unless one was given
    (data in a store is fingerprinted by the content hashes taken when it was written).
    """

    train: tuple[Any, Any]
    valid: tuple[Any, Any]
    test: tuple[Any, Any] | None = None
    has_validation: bool = True
    known_fingerprint: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_arrays(
        cls, x_train: Any, y_train: Any, x_valid: Any = None, y_valid: Any = None
    ) -> Splits:
        """From ``(x_train, y_train[, x_valid, y_valid])``; no validation pair: train again."""
        if x_valid is None and y_valid is None:
            return cls((x_train, y_train), (x_train, y_train), None, False)
        return cls((x_train, y_train), (x_valid, y_valid))

    @functools.cached_property
    def fingerprint(self) -> str:
        return self.known_fingerprint or data_fingerprint(self.train, self.valid, self.test)

    def with_fingerprint(self, fingerprint: str | None) -> Splits:
        return dataclasses.replace(self, known_fingerprint=fingerprint)

    # The field names of the older Splits classes (pipeline files, studies).
    @property
    def x_train(self) -> Any:
        return self.train[0]

    @property
    def y_train(self) -> Any:
        return self.train[1]

    @property
    def x_valid(self) -> Any:
        return self.valid[0]

    @property
    def y_valid(self) -> Any:
        return self.valid[1]

    @property
    def has_valid(self) -> bool:
        return self.has_validation

    def describe(self) -> str:
        """One line such as ``"train 1078 × 64, valid 359 × 64, test 360 × 64"``."""
        parts = []
        for name in _SPLIT_NAMES:
            split = getattr(self, name)
            if split is not None and (name != "valid" or self.has_validation):
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
    """Validate what a project's loader returned; ProjectError naming the split otherwise.

    Accepted: ``{"train": (x, y), "valid": (x, y)[, "test": (x, y)]}``, a :class:`Splits`,
    or ``(x_train, y_train, x_valid, y_valid[, x_test, y_test])``.
    """
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


def splits_from_data(data: Any) -> Splits:
    """What a study or PBT run is given as ``data``; ValidationError naming it otherwise.

    ``(x_train, y_train, x_valid, y_valid)``, ``(x, y)`` (scored on the training data),
    ``{"train": (x, y), "valid": (x, y)}`` or a :class:`Splits` (kept as it is, with its
    test split and fingerprint, so a study records the project's data fingerprint).
    """
    expected = (
        "expected (x_train, y_train, x_valid, y_valid), (x, y), "
        "{'train': (x, y), 'valid': (x, y)} or a soma.project.Splits"
    )
    if isinstance(data, Splits):
        return data
    if isinstance(data, Mapping):
        train, valid, test = data.get("train"), data.get("valid"), data.get("test")
    elif hasattr(data, "train") and hasattr(data, "valid"):
        train, valid, test = data.train, data.valid, getattr(data, "test", None)
    elif isinstance(data, tuple | list) and len(data) in (2, 4):
        return Splits.from_arrays(*data)
    else:
        raise ValidationError("data", f"{expected}; got {type(data).__name__}")
    for name, pair in (("train", train), ("valid", valid)):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValidationError(f"data.{name}", f"expected an (x, y) pair, got {pair!r:.80}")
    if test is not None and (not isinstance(test, tuple | list) or len(test) != 2):
        raise ValidationError("data.test", f"expected an (x, y) pair, got {test!r:.80}")
    return Splits(tuple(train), tuple(valid), None if test is None else tuple(test))  # type: ignore[arg-type]


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
