"""LocalStore: round trips, atomic writes, content addressing, ranged reads, corruption."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from soma.data import DataRef, LocalStore, StoreCorruptError, StoreError, StoreKeyError, open_store
from soma.errors import ValidationError


def test_every_value_kind_round_trips(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    values = [np.eye(3, dtype=np.float16), {"a": [1, None]}, [1.5], "s", b"\x00", (1, 2), {3}]
    for value in values:
        ref = store.put(value)
        back = store.get(ref.key)
        assert type(back) is type(value)
        assert np.array_equal(back, value) if isinstance(value, np.ndarray) else back == value
    kinds = sorted(store.meta(k).kind for k in store.keys(""))
    assert kinds == ["array", "bytes", "json", "json", "json", "pickle", "pickle"]


def test_writes_leave_no_partial_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put(np.zeros(10), "a/b")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["b.data", "b.meta.json"]


def test_bad_keys_are_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ["../x", "/abs", "a//b", "x.meta.json", "", "sp ace"]:
        with pytest.raises(ValidationError, match="key"):
            store.put(1, key)


def test_get_rows_of_lists_and_arrays(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put(list(range(10)), "l")
    assert store.get_rows("l", 8, 5) == [8, 9]
    store.put(np.arange(10), "a")
    assert store.get_rows("a", 10, 3).shape == (0,)
    with pytest.raises(ValidationError, match="start"):
        store.get_rows("a", -1, 2)


def test_truncated_payload_is_detected(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put(np.arange(100), "t")
    with open(tmp_path / "t.data", "r+b") as handle:
        handle.truncate(50)
    with pytest.raises(StoreCorruptError, match="'t'"):
        store.get("t")


def test_a_ref_refuses_an_object_replaced_after_it_was_taken(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ref = store.put([1, 2], "k")
    store.put([3, 4], "k")
    with pytest.raises(StoreError, match="changed since the reference"):
        ref.resolve()


def test_refs_serialise_and_resolve_in_another_store_object(tmp_path: Path) -> None:
    ref = LocalStore(tmp_path).put(np.arange(20.0).reshape(10, 2), "x")
    text = ref.model_dump_json()
    back = DataRef.model_validate_json(text)
    assert back == ref and "x" in repr(back) and "(10, 2)" in repr(back)
    np.testing.assert_array_equal(back[2:4].resolve(), [[4, 5], [6, 7]])
    assert back[2:4].cache_key != back.cache_key
    assert open_store(tmp_path.as_uri()) is open_store(str(tmp_path))


def test_missing_key(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StoreKeyError, match=r"LocalStore\(file://.*'gone'"):
        store.meta("gone")
    with pytest.raises(KeyError):
        store.remove("gone")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_an_auth_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put(1, "p")
    (tmp_path / "p.meta.json").chmod(0)
    with pytest.raises(StoreError, match="permission"):
        store.get("p")


def test_regression_zero_dimensional_array_keeps_its_shape(tmp_path: Path) -> None:
    # ascontiguousarray made a 0-d array come back with shape (1,).
    store = LocalStore(tmp_path)
    for value in (np.array(5.0), np.arange(6, dtype=">i4")[::2], np.zeros((0, 3))):
        back = store.get(store.put(value).key)
        assert back.shape == value.shape and back.dtype == value.dtype
        np.testing.assert_array_equal(back, value)


def test_a_dataref_is_a_graph_input(tmp_path: Path) -> None:
    from soma import Cache, Filter, Graph

    class Center(Filter):
        def fit(self, x, y=None):
            return float(np.mean(x))

        def forward(self, x, state):
            return x - state

    store = LocalStore(tmp_path / "st")
    x_ref = store.put(np.arange(10.0))
    graph = Graph.somatize(Center(), cache=Cache())
    np.testing.assert_allclose(graph.fit_forward(x_ref), np.arange(10.0) - 4.5)
    np.testing.assert_allclose(graph.forward(x_ref[8:10]), [3.5, 4.5])  # a slice: 2 rows read
    again = Graph.somatize(Center(), cache=graph.cache)
    again.fit(x_ref)
    assert again.last_run.cache_hits == 1


def test_a_dataref_input_is_keyed_by_its_content_hash_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from soma import Cache, Filter, Graph
    from soma.cache.keys import input_key, reference_key

    class Double(Filter):
        def forward(self, x, state):
            return x * 2

    store = LocalStore(tmp_path / "st")
    ref = store.put(np.arange(5.0))
    assert input_key("x", ref) == reference_key(ref.content_hash)
    assert input_key("x", (ref, 1)) != input_key("x", (ref, 2))
    cache = Cache()
    np.testing.assert_array_equal(
        Graph.somatize(Double(), cache=cache).forward(ref), np.arange(5.0) * 2
    )
    import soma.cache.keys as keys_module

    hashed: list[type] = []
    original = keys_module.hash_value

    def recording(value):
        hashed.append(type(value))
        return original(value)

    monkeypatch.setattr(keys_module, "hash_value", recording)
    graph = Graph.somatize(Double(), cache=cache)
    graph.forward(ref)
    assert graph.last_run.cache_hits == 1
    assert np.ndarray not in hashed  # keyed by the content hash taken at put, data unread
