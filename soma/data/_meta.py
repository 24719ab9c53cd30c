"""What a store knows about an object without reading it: ``StoreMeta``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Kind", "StoreMeta"]

Kind = Literal["array", "json", "bytes", "pickle"]


class StoreMeta(BaseModel):
    """Rows, shape, dtype and kind of a stored object, plus its content hash.

    ``rows`` is the length of the first axis (arrays), of the list (JSON/pickled lists) or
    of the byte string; None when the value has no rows (a dict, a scalar).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    kind: Kind
    format: str
    nbytes: int = Field(description="stored size in bytes (compressed for Zarr)")
    content_hash: str = Field(description="SHA-256 hex taken when the value was put")
    rows: int | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    # Layout details the store needs for ranged reads; not part of the public summary.
    header_len: int | None = Field(default=None, repr=False)
    blocks: list[str] = Field(default_factory=list, repr=False)
    chunk_rows: int | None = Field(default=None, repr=False)

    def summary(self) -> dict[str, object]:
        """The public fields (no layout details), for printing and JSON output."""
        return self.model_dump(exclude={"header_len", "blocks", "chunk_rows"})
