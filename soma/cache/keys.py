"""Cache keys: every recipe the runtime uses to name a cached value, as small pure functions.

A key is a Merkle hash: it is computed from the keys of what a value was made from, never
from the value itself (except the graph inputs, hashed once per run). So a run can name
every node's state and output top-down before computing anything, and a change to one
node's code or parameters changes the keys of that node and its descendants only.

The recipes, read back:

* graph input:   ``input_key("x", x)``  = ``hash_value(x)`` (the labels ``y`` likewise);
  a data-store reference: ``reference_key(content hash taken at put)``
* node inputs:   the predecessors' output keys in fan-in order; a node that receives a dict
  keyed by predecessor name gets ``"name=key"`` entries (``node_input_keys``)
* fitted state:  ``state_key(fp, inputs, y)`` = ``combine("state", fp, *inputs, y)``;
  fitted by a training strategy other than Local: ``combine("state", fp, *inputs, y,
  "strategy=" + token)`` (``TrainingStrategy.cache_token``: its class and settings)
* output:        ``output_key(fp, state, inputs)`` = ``combine("out", fp, state or "-", *inputs)``
* a state fitted without a cache, seen later by a cached forward: ``value_key(state)``
* several leaves: ``leaves_key(leaves, keys)``; a Branch/Loop input: ``control_input_key``

``fp`` is the filter's code + parameter fingerprint (``soma.fingerprint.filter_fingerprint``).
Changing any recipe here changes every key, so entries already on disk stop being found
(they are recomputed, never served wrongly). A new kind of input (a lazy reference into a
data store) adds its own recipe here, keyed by what identifies its content.

>>> from soma.cache.keys import output_key, state_key
>>> s = state_key("f" * 64, ["a" * 64], "b" * 64)
>>> output_key("f" * 64, s, ["a" * 64]) != output_key("f" * 64, None, ["a" * 64])
True
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from soma.errors import CacheError
from soma.fingerprint import combine, hash_value

__all__ = [
    "control_input_key",
    "input_key",
    "leaves_key",
    "node_input_keys",
    "output_key",
    "reference_key",
    "state_key",
    "value_key",
]


def input_key(name: str, value: Any) -> str:
    """The key of a graph input (``x`` or ``y``): its content hash.

    A lazy reference into a data store (``soma.data.DataRef``, or a tuple/list/dict of them)
    is keyed by the content hash taken when it was stored (``reference_key``), without
    reading the data. CacheError naming the input when it cannot be hashed (then the graph
    cannot be cached).
    """
    try:
        found = _reference_input_key(value)
        if found is not None:
            return found
        return hash_value(value)
    except Exception as exc:
        raise CacheError(
            f"cannot hash the graph input {name} ({type(value).__name__}) for the cache: {exc}; "
            "pass data that numpy or cloudpickle can serialize, or run the graph without a cache"
        ) from exc


def reference_key(content_key: str) -> str:
    """The key of one lazy reference: its content key (the SHA-256 taken at ``put``, plus
    the row window of a slice), whichever store holds it."""
    return combine("ref", content_key)


def _reference_input_key(value: Any) -> str | None:
    """``reference_key`` of a reference, or of a tuple/list/dict holding some (the other
    items hashed as values); None when ``value`` holds no reference at the top level."""
    content = getattr(value, "__soma_content_key__", None)
    if isinstance(content, str):
        return reference_key(content)
    if type(value) in (tuple, list):
        items = list(enumerate(value))
    elif type(value) is dict:
        items = list(value.items())
    else:
        return None
    keys = [getattr(item, "__soma_content_key__", None) for _, item in items]
    if not any(isinstance(key, str) for key in keys):
        return None
    parts = [
        f"{hash_value(name)}={reference_key(key) if isinstance(key, str) else hash_value(item)}"
        for (name, item), key in zip(items, keys, strict=True)
    ]
    return combine("refs", type(value).__name__, *parts)


def node_input_keys(sources: Sequence[Any], keys: Mapping[Any, str], *, by_name: bool) -> list[str]:
    """A node's input keys in fan-in order.

    ``by_name``: the filter receives one dict keyed by predecessor name, so the names are
    part of its input (renaming a predecessor must not hit the old entry).
    """
    found = [keys[source] for source in sources]
    if by_name:
        return [f"{source}={key}" for source, key in zip(sources, found, strict=True)]
    return found


def state_key(
    fingerprint: str, inputs: Sequence[str], y_key: str | None, strategy: str | None = None
) -> str:
    """The key of a node's fitted state: its code, its inputs, the labels and the training
    strategy (``None``: Local, whose keys are those from before strategies existed)."""
    if strategy is None:
        return combine("state", fingerprint, *inputs, y_key)  # type: ignore[arg-type]
    return combine("state", fingerprint, *inputs, y_key, f"strategy={strategy}")  # type: ignore[arg-type]


def output_key(fingerprint: str, state: str | None, inputs: Sequence[str]) -> str:
    """The key of a node's forward output: its code, its state (``-``: stateless), inputs."""
    return combine("out", fingerprint, state or "-", *inputs)


def value_key(value: Any) -> str:
    """A key from a value's content (a state fitted while no cache was in use).

    A value that cannot be hashed (it holds a lock, say) gets a random key that no later
    run shares: its outputs are computed, never served from another run's entry.
    """
    try:
        return "value:" + hash_value(value)
    except Exception:
        return "unique:" + secrets.token_hex(16)


def leaves_key(leaves: Sequence[str], keys: Mapping[Any, str]) -> str:
    """The key of a region's output when it has several leaves (a dict by leaf name)."""
    return combine("leaves", *(f"{leaf}={keys[leaf]}" for leaf in leaves))


def control_input_key(sources: Sequence[Any], keys: Mapping[Any, str]) -> str:
    """The key of a Branch/Loop node's input: its one source's key, or all of them by name."""
    found = [keys[source] for source in sources]
    if len(found) == 1:
        return found[0]
    return combine("keyed", *map(str, sources), *found)
