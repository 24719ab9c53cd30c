"""Errors raised by data stores. Each names the store and the key it was about."""

from __future__ import annotations

from soma.errors import SomaError

__all__ = [
    "MissingExtraError",
    "StoreAuthError",
    "StoreCorruptError",
    "StoreError",
    "StoreKeyError",
    "StoreUnreachableError",
    "StreamError",
]


class StoreError(SomaError):
    """A store refused or failed an operation; ``store`` and ``key`` say where."""

    def __init__(self, store: str, key: str | None, message: str) -> None:
        self.store = store
        self.key = key
        self.message = message
        where = f"{store}" if key is None else f"{store}, key {key!r}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[StoreError], tuple[str, str | None, str]]:
        # Errors cross process boundaries (workers); the default reduce would call
        # __init__ with the formatted message alone and fail.
        return (type(self), (self.store, self.key, self.message))


class StoreKeyError(StoreError, KeyError):
    """No object under that key."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return StoreError.__str__(self)


class StoreAuthError(StoreError):
    """The store refused the credentials (wrong key or secret, no permission)."""


class StoreUnreachableError(StoreError):
    """The store's endpoint could not be reached."""


class StoreCorruptError(StoreError):
    """Stored bytes do not match their checksum or cannot be decoded."""


class StreamError(SomaError):
    """A stream cannot run as asked (a filter that cannot fit incrementally, a bad mode)."""


class MissingExtraError(SomaError, ImportError):
    """An optional dependency is not installed; the message says what to install."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.feature = feature
        self.extra = extra
        self.module = module
        super().__init__(
            f"{feature} needs the {module!r} package: pip install 'soma-research[{extra}]'"
        )

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str, str]]:
        return (type(self), (self.feature, self.extra, self.module))


def require(module: str, feature: str, extra: str) -> object:
    """Import ``module`` or raise MissingExtraError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(feature, extra, module) from exc
