"""Stream sources: JSON Lines, CSV, Parquet, arrays in a store, generators; skipping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soma.data import (
    ArrayChunks,
    CSVChunks,
    GeneratorChunks,
    JSONLinesChunks,
    ParquetChunks,
)
from soma.errors import ValidationError


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps({"i": i}) for i in range(7)) + "\n\n")
    source = JSONLinesChunks(path, 3)
    assert [len(c) for c in source] == [3, 3, 1]
    assert next(source.chunks(2)) == [{"i": 6}]
    path.write_text('{"i": 1}\nnot json\n')
    with pytest.raises(ValidationError, match="chunk 0"):
        list(JSONLinesChunks(path, 5))


def test_csv_numeric_and_dicts(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(5)))
    chunks = list(CSVChunks(path, 2))
    np.testing.assert_array_equal(np.concatenate(chunks), [[i, i * 2] for i in range(5)])
    assert next(CSVChunks(path, 2, numeric=False).chunks(1)) == [
        {"a": "2", "b": "4"},
        {"a": "3", "b": "6"},
    ]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": np.arange(10.0), "y": np.arange(10) * 3}), path)
    chunks = list(ParquetChunks(path, 4, columns=["x", "y"]))
    assert [c.shape for c in chunks] == [(4, 2), (4, 2), (2, 2)]
    assert next(ParquetChunks(path, 4, as_arrow=True).chunks(2)).num_rows == 2


def test_array_chunks_from_a_store_read_only_their_rows(tmp_path: Path) -> None:
    from soma.data import LocalStore

    store = LocalStore(tmp_path)
    ref = store.put(np.arange(100).reshape(50, 2), "a")
    source = ArrayChunks(ref, 20)
    assert len(source) == 3
    np.testing.assert_array_equal(next(source.chunks(2)), np.arange(80, 100).reshape(10, 2))
    np.testing.assert_array_equal(
        np.concatenate(list(ArrayChunks(store, 7, key="a"))), ref.resolve()
    )


def test_generator_chunks_restart_and_skip() -> None:
    source = GeneratorChunks(lambda: iter(range(5)))
    assert list(source) == list(source) == [0, 1, 2, 3, 4]
    assert list(source.chunks(3)) == [3, 4]
    with pytest.raises(ValidationError, match="rows"):
        ArrayChunks(np.zeros(3), 0)
