"""Stores from URLs, and the process-wide table of open stores that DataRefs resolve to.

URLs: a path or ``file:///abs/path`` (LocalStore), ``s3://bucket/prefix`` (S3Store),
``zarr:///abs/path`` or ``zarr://relative/path`` (ZarrStore on disk), ``zarr+s3://bucket/prefix``
(ZarrStore on S3). A data URL names one object with ``#key``: ``zarr:///data/root#train``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import ValidationError

if TYPE_CHECKING:
    from soma.data._base import DataStore
    from soma.data.ref import DataRef

__all__ = ["open_ref", "open_store", "remember_store", "split_data_url", "store_for"]

_open: dict[str, DataStore] = {}
_lock = threading.Lock()


def remember_store(store: DataStore, *, replace: bool = True) -> None:
    """Make ``store`` the one DataRefs with its URL resolve to in this process
    (``replace=False``: only if none is known yet)."""
    with _lock:
        if replace or store.url not in _open:
            _open[store.url] = store


def open_store(url: str, **options: Any) -> DataStore:
    """The store at ``url``: the one already open in this process, or a new one.

    ``options`` go to the store's constructor (S3 credentials, ``endpoint_url``); with
    options a new store is always made (and remembered).
    """
    if not isinstance(url, str) or not url:
        raise ValidationError("url", f"expected a store URL or path, got {url!r}")
    if not options:
        with _lock:
            found = _open.get(url) or _open.get(_normalise(url))
        if found is not None:
            return found
    store = _make(url, options)
    remember_store(store)
    return store


def store_for(url: str, options: dict[str, str]) -> DataStore:
    """The store a DataRef resolves through: the one open under ``url`` in this process,
    else one made from ``url`` and the reference's public ``options`` (credentials from
    the environment), remembered for the next reference."""
    with _lock:
        found = _open.get(url) or _open.get(_normalise(url))
    if found is not None:
        return found
    store = _make(url, dict(options))
    remember_store(store, replace=False)
    return store


def split_data_url(url: str) -> tuple[str, str]:
    """``"zarr:///root#key"`` -> (``"zarr:///root"``, ``"key"``)."""
    base, sep, key = url.partition("#")
    if not sep or not key:
        raise ValidationError(
            "data", f"expected STORE_URL#KEY (e.g. zarr:///data#train), got {url!r}"
        )
    return base, key


def open_ref(url: str, **options: Any) -> DataRef:
    """A DataRef to the object a data URL names (reads its metadata only)."""
    base, key = split_data_url(url)
    return open_store(base, **options).ref(key)


def _normalise(url: str) -> str:
    if "://" not in url:
        return Path(url).expanduser().resolve().as_uri()
    return url


def _make(url: str, options: dict[str, Any]) -> DataStore:
    scheme, sep, rest = url.partition("://")
    if not sep:
        from soma.data.local import LocalStore

        return LocalStore(url, **options)
    if scheme == "file":
        from soma.data.local import LocalStore

        return LocalStore(rest, **options)
    if scheme in ("s3", "zarr+s3"):
        bucket, _, prefix = rest.partition("/")
        if scheme == "s3":
            from soma.data.s3 import S3Store

            return S3Store(bucket, prefix, **options)
        from soma.data.zarr import ZarrStore

        return ZarrStore(f"s3://{rest}", **options)
    if scheme == "zarr":
        from soma.data.zarr import ZarrStore

        return ZarrStore(rest, **options)
    raise ValidationError(
        "url", f"unknown store scheme {scheme!r} in {url!r} (expected file, s3, zarr, zarr+s3)"
    )
