"""Stream sources: chunks of rows from JSON Lines, CSV, Parquet/Arrow files, arrays in a
store, or a Python generator.

Every source is a :class:`ChunkSource`: ``chunks(start)`` iterates from chunk ``start``,
so a resumed stream skips what its checkpoint covers without re-reading it where the
format allows (arrays in a store, Parquet row groups); line formats skip lines cheaply.
Any other iterable works as a stream too (a resumed stream then discards the first chunks).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from soma.data._errors import require
from soma.errors import ValidationError

__all__ = [
    "ArrayChunks",
    "CSVChunks",
    "ChunkSource",
    "GeneratorChunks",
    "JSONLinesChunks",
    "ParquetChunks",
    "chunks_from",
]


def _check_rows(rows: Any) -> int:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValidationError("rows", f"expected rows per chunk as an int >= 1, got {rows!r}")
    return rows


def _check_file(path: str | os.PathLike[str]) -> Path:
    found = Path(path).expanduser()
    if not found.is_file():
        raise ValidationError("path", f"expected an existing file, got {found}")
    return found


class ChunkSource:
    """Base of the sources: iterate with ``for chunk in source`` or ``source.chunks(start)``."""

    rows: int

    def chunks(self, start: int = 0) -> Iterator[Any]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        return self.chunks(0)


class _LineChunks(ChunkSource):
    def __init__(self, path: str | os.PathLike[str], rows: int) -> None:
        self.path = _check_file(path)
        self.rows = _check_rows(rows)

    def _lines(self, handle: Any, start: int) -> Iterator[list[str]]:
        lines = (line for line in handle if line.strip())
        for _ in islice(lines, start * self.rows):  # skip what a checkpoint covers
            pass
        while batch := list(islice(lines, self.rows)):
            yield batch


class JSONLinesChunks(_LineChunks):
    """Lists of up to ``rows`` decoded JSON values, one per non-blank line."""

    def chunks(self, start: int = 0) -> Iterator[list[Any]]:
        with open(self.path, encoding="utf-8") as handle:
            for number, batch in enumerate(self._lines(handle, start), start):
                try:
                    yield [json.loads(line) for line in batch]
                except json.JSONDecodeError as exc:
                    raise ValidationError(
                        "path", f"{self.path}: chunk {number} holds a line that is not JSON: {exc}"
                    ) from exc


class CSVChunks(ChunkSource):
    """Chunks of a CSV file with a header: float arrays (``numeric=True``, every column) or
    lists of dicts by column name."""

    def __init__(
        self, path: str | os.PathLike[str], rows: int, *, numeric: bool = True, delimiter: str = ","
    ) -> None:
        self.path = _check_file(path)
        self.rows = _check_rows(rows)
        self.numeric = numeric
        self.delimiter = delimiter

    def chunks(self, start: int = 0) -> Iterator[Any]:
        with open(self.path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            header = next(reader, None)
            if header is None:
                return
            for _ in islice(reader, start * self.rows):
                pass
            number = start
            while batch := list(islice(reader, self.rows)):
                if not self.numeric:
                    yield [dict(zip(header, row, strict=False)) for row in batch]
                else:
                    try:
                        yield np.asarray(batch, dtype=np.float64)
                    except ValueError as exc:
                        raise ValidationError(
                            "path",
                            f"{self.path}: chunk {number} has a value that is not a number ({exc});"
                            " pass numeric=False for rows as dicts",
                        ) from exc
                number += 1


class ParquetChunks(ChunkSource):
    """Chunks of a Parquet file as 2-D arrays of the chosen numeric ``columns`` (all when
    None), or as ``pyarrow.RecordBatch`` with ``as_arrow=True``. Needs ``[arrow]``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        rows: int,
        *,
        columns: list[str] | None = None,
        as_arrow: bool = False,
    ) -> None:
        require("pyarrow.parquet", "ParquetChunks", "arrow")
        self.path = _check_file(path)
        self.rows = _check_rows(rows)
        self.columns = columns
        self.as_arrow = as_arrow

    def chunks(self, start: int = 0) -> Iterator[Any]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path)
        batches = parquet.iter_batches(batch_size=self.rows, columns=self.columns)
        for _ in islice(batches, start):
            pass
        for batch in batches:
            if self.as_arrow:
                yield batch
            else:
                yield np.column_stack([col.to_numpy(zero_copy_only=False) for col in batch.columns])


class ArrayChunks(ChunkSource):
    """Row chunks of an array, a DataRef or a store key, read with ``get_rows`` (only the
    rows of each chunk are in memory at a time)."""

    def __init__(self, data: Any, rows: int, *, key: str | None = None) -> None:
        from soma.data._base import DataStore
        from soma.data.ref import DataRef

        self.rows = _check_rows(rows)
        if isinstance(data, DataStore):
            if key is None:
                raise ValidationError("key", "expected the key of an array in the store")
            self._read = lambda a, n: data.get_rows(key, a, n)
            self.total = data.meta(key).rows or 0
        elif isinstance(data, DataRef):
            store, base = data.open_store(), data.start
            self._read = lambda a, n: store.get_rows(data.key, base + a, n)
            self.total = data.rows or 0
        elif isinstance(data, np.ndarray) and data.ndim:
            self._read = lambda a, n: data[a : a + n]
            self.total = len(data)
        else:
            raise ValidationError(
                "data", f"expected an array, a DataRef or a store, got {type(data).__name__}"
            )

    def chunks(self, start: int = 0) -> Iterator[Any]:
        for offset in range(start * self.rows, self.total, self.rows):
            yield self._read(offset, self.rows)

    def __len__(self) -> int:
        return -(-self.total // self.rows)


class GeneratorChunks(ChunkSource):
    """Chunks from a function returning a fresh iterator each call (so a resumed stream can
    start over and skip)."""

    def __init__(self, make: Callable[[], Iterable[Any]]) -> None:
        if not callable(make):
            raise ValidationError(
                "make", f"expected a function returning an iterator, got {make!r}"
            )
        self.make = make

    def chunks(self, start: int = 0) -> Iterator[Any]:
        return islice(iter(self.make()), start, None)


def chunks_from(source: Any, start: int = 0) -> Iterator[Any]:
    """Iterate ``source`` from chunk ``start`` (sources skip cheaply; other iterables by
    discarding)."""
    if isinstance(source, ChunkSource):
        return source.chunks(start)
    return islice(iter(source), start, None)
