"""A project's data in a store: ``data = "zarr:///data/digits#v1"`` in soma.toml.

The URL names a store and a key prefix; the splits are the arrays under it,
``PREFIX/train/x``, ``PREFIX/train/y``, ``PREFIX/valid/x``, ``PREFIX/valid/y`` and optionally
``PREFIX/test/x`` and ``PREFIX/test/y``. A project's loader (``data.py:load``) may also return
DataRefs in place of arrays. Either way the splits are fingerprinted by the content hashes
taken at ``put`` (no data is read for that), then resolved.
"""

from __future__ import annotations

from typing import Any

from soma.data._open import open_store, split_data_url
from soma.data.ref import DataRef, contains_refs, keyed_refs, resolve_refs
from soma.errors import ProjectError

__all__ = ["is_data_url", "load_splits", "resolve_with_fingerprint"]


def is_data_url(value: str) -> bool:
    """True for ``SCHEME://...`` (a store URL), False for ``FILE.py:FUNCTION``."""
    return "://" in value


def load_splits(url: str) -> dict[str, tuple[DataRef, DataRef]]:
    """References to the splits under a data URL; ProjectError naming what is missing."""
    try:
        base, prefix = split_data_url(url) if "#" in url else (url, "")
        store = open_store(base)
        root = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        keys = set(store.keys(root))
    except Exception as exc:
        raise ProjectError(f"soma.toml: data: cannot open {url!r}: {exc}") from exc
    splits: dict[str, tuple[DataRef, DataRef]] = {}
    for name in ("train", "valid", "test"):
        wanted = (f"{root}{name}/x", f"{root}{name}/y")
        if not any(key in keys for key in wanted):
            if name != "test":
                raise ProjectError(
                    f"soma.toml: data: {url!r} has no {name!r} split (expected the keys "
                    f"{wanted[0]!r} and {wanted[1]!r}; found {sorted(keys) or 'none'})"
                )
            continue
        missing = [key for key in wanted if key not in keys]
        if missing:
            raise ProjectError(f"soma.toml: data: {url!r} lacks {missing[0]!r}")
        splits[name] = (store.ref(wanted[0]), store.ref(wanted[1]))
    return splits


def resolve_with_fingerprint(value: Any) -> tuple[Any, str | None]:
    """``(value with refs resolved, content fingerprint)``; the fingerprint is None when
    ``value`` holds no DataRef (the caller hashes the data as before)."""
    if not contains_refs(value):
        return value, None
    from soma.fingerprint import hash_value

    fingerprint = hash_value(keyed_refs(value))  # content hashes only: nothing is read
    return resolve_refs(value), fingerprint
