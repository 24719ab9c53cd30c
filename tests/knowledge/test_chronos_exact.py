"""ChronosIndex's exact scoring (a small index, a small time window, given seqs) equals brute
force whether its rows are one run (scored from a slice), nearly one run, or scattered."""

from __future__ import annotations

import numpy as np
import pytest

from soma.knowledge._index_base import PointBatch, TimeWindow

pytestmark = pytest.mark.backend("chronos")


def _index(n: int = 300, dim: int = 16) -> tuple[object, np.ndarray]:
    from soma.knowledge._chronos import ChronosIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ChronosIndex(dim)
    index.upsert(
        PointBatch(
            seqs=np.arange(n, dtype=np.int64),
            vectors=vectors,
            lines=[f"line-{i % 3}" for i in range(n)],
            started=1_700_000_000.0 + 60.0 * np.arange(n),
        )
    )
    return index, vectors


def _brute(vectors: np.ndarray, query: np.ndarray, seqs: np.ndarray, k: int) -> list[int]:
    scores = vectors[seqs] @ query
    return [int(seqs[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def test_whole_index_and_a_window_match_brute_force() -> None:
    index, vectors = _index()
    query = vectors[7] + 0.1
    query /= np.linalg.norm(query)
    got = [seq for seq, _ in index.search(query, 10)]  # type: ignore[attr-defined]
    assert got == _brute(vectors, query, np.arange(300), 10)
    window = TimeWindow(start=1_700_000_000.0 + 60.0 * 100, end=1_700_000_000.0 + 60.0 * 199)
    got = [seq for seq, _ in index.search(query, 10, window=window)]  # type: ignore[attr-defined]
    assert got == _brute(vectors, query, np.arange(100, 200), 10)


@pytest.mark.parametrize(
    "seqs",
    [
        np.arange(50, 90)[::-1],  # one run, given in reverse order
        np.r_[np.arange(10, 40), np.arange(45, 60)][::-1],  # nearly one run, unsorted
        np.array([290, 3, 150, 77, 12, 201, 5, 260]),  # scattered
    ],
)
def test_exact_over_given_seqs_matches_brute_force(seqs: np.ndarray) -> None:
    index, vectors = _index()
    query = vectors[seqs[0]] * 0.5 + vectors[1] * 0.5
    query /= np.linalg.norm(query)
    got = index.exact(query, seqs.tolist(), 5)  # type: ignore[attr-defined]
    assert [seq for seq, _ in got] == _brute(vectors, query, seqs, 5)
    expected = np.sort(vectors[seqs] @ query)[::-1][:5]
    np.testing.assert_allclose([score for _, score in got], expected, rtol=1e-5)
