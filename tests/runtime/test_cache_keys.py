"""Each cache-key recipe of soma.cache.keys on its own, and that the runtime uses them."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from soma import Cache, Filter, Graph
from soma.cache import keys
from soma.errors import CacheError
from soma.fingerprint import combine, filter_fingerprint, hash_value

FP = "f" * 64
A, B = "a" * 64, "b" * 64


def test_input_key_is_the_content_hash():
    x = np.arange(5.0)
    assert keys.input_key("x", x) == hash_value(x) == keys.input_key("x", x.copy())
    assert keys.input_key("x", x) != keys.input_key("x", x + 1)


def test_input_key_names_the_input_it_cannot_hash():
    with pytest.raises(CacheError, match="graph input y"):
        keys.input_key("y", threading.Lock())


def test_node_input_keys_keep_fan_in_order_and_add_names_for_dict_inputs():
    store = {"p": A, "q": B}
    assert keys.node_input_keys(["q", "p"], store, by_name=False) == [B, A]
    assert keys.node_input_keys(["p", "q"], store, by_name=True) == [f"p={A}", f"q={B}"]


def test_state_key_depends_on_code_inputs_and_labels():
    base = keys.state_key(FP, [A], B)
    assert base == combine("state", FP, A, B)
    assert base != keys.state_key("e" * 64, [A], B)
    assert base != keys.state_key(FP, [B], B)
    assert base != keys.state_key(FP, [A], A)


def test_output_key_marks_a_stateless_node_with_a_dash():
    assert keys.output_key(FP, None, [A]) == combine("out", FP, "-", A)
    assert keys.output_key(FP, B, [A]) == combine("out", FP, B, A)


def test_value_key_hashes_content_or_is_unique():
    assert keys.value_key([1, 2]) == keys.value_key([1, 2])
    lock = threading.Lock()
    first, second = keys.value_key(lock), keys.value_key(lock)
    assert first.startswith("unique:") and first != second


def test_leaves_and_control_input_keys():
    store = {"a": A, "b": B}
    assert keys.leaves_key(["a", "b"], store) == combine("leaves", f"a={A}", f"b={B}")
    assert keys.control_input_key(["a"], store) == A
    assert keys.control_input_key(["a", "b"], store) == combine("keyed", "a", "b", A, B)


class _Center(Filter):
    def fit(self, x, y=None):
        return float(np.mean(x))

    def forward(self, x, state):
        return x - state


def test_the_runtime_reports_the_keys_these_recipes_give():
    x, y = np.arange(4.0), np.zeros(4)
    flt = _Center()
    graph = Graph.somatize(flt, cache=Cache())
    graph.fit(x, y)
    fp = filter_fingerprint(flt)
    state = keys.state_key(fp, [keys.input_key("x", x)], keys.input_key("y", y))
    expected = keys.output_key(fp, state, [keys.input_key("x", x)])
    assert graph.last_run is not None
    assert graph.last_run.nodes["_center"].key == expected
