"""The data a project's loader returns: train / valid (/ test) splits, validated.

A loader (``data.py:load`` by default) takes no arguments and returns one of:

* ``{"train": (x, y), "valid": (x, y)}`` plus optionally ``"test": (x, y)``;
* a :class:`Splits` (``from soma.project import Splits``);
* a 4-tuple ``(x_train, y_train, x_valid, y_valid)`` or a 6-tuple that adds the test split.

Each split is an ``(x, y)`` pair whose lengths agree; ``x`` and ``y`` can be anything the
filters accept (numpy arrays, lists, data frames). The loaded splits carry the content
fingerprint every tool records (:func:`soma.experiments.data_fingerprint`). ``Splits``
and the validation live in :mod:`soma.experiments`; this module keeps the old names.
"""

from __future__ import annotations

from soma.experiments._splits import Splits, coerce_splits

__all__ = ["Splits", "coerce_splits", "with_fingerprint"]


def with_fingerprint(splits: Splits, fingerprint: str | None) -> Splits:
    return splits.with_fingerprint(fingerprint)
