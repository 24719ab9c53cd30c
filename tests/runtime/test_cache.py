"""Canonical hashing, fingerprints, Merkle keys and the two-tier cache."""

from __future__ import annotations

import importlib.util
import math
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from runtime_filters import CALLS, Add, Center, Mul

from soma import Cache, Filter, Graph, ValidationError
from soma.fingerprint import filter_fingerprint, graph_fingerprint, hash_value

# -- hashing -------------------------------------------------------------------------


def test_nan_and_infinities_give_different_keys():
    values = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, None]
    assert len({hash_value(v) for v in values}) == len(values)
    assert hash_value([1.0, math.nan]) != hash_value([1.0, math.inf])
    assert hash_value({"a": math.nan}) == hash_value({"a": math.nan})  # stable


def test_hash_is_canonical_and_typed():
    assert hash_value({"a": 1, "b": [1, 2]}) == hash_value({"b": [1, 2], "a": 1})
    assert len({hash_value(v) for v in (1, 1.0, True, "1", b"1", (1,), [1])}) == 7
    assert hash_value({1, 2, 3}) == hash_value({3, 2, 1})
    assert hash_value({1: "x", "1": "x"}) != hash_value({1: "x", "2": "x"})


def test_numpy_arrays_hash_by_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.float64)
    assert hash_value(a) == hash_value(a.copy())
    assert hash_value(a) != hash_value(a.astype(np.float32))
    assert hash_value(a) != hash_value(a.reshape(2, 3))
    assert hash_value(a.reshape(2, 3).T) == hash_value(np.ascontiguousarray(a.reshape(2, 3).T))
    nan = np.array([np.nan, np.inf])
    assert hash_value(nan) != hash_value(np.array([np.inf, np.nan]))
    assert hash_value(np.array(["a", None], dtype=object)) != hash_value(
        np.array(["a", "b"], dtype=object)
    )


# -- code fingerprints ---------------------------------------------------------------


def _load(tmp_path: Path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BASE = """
from soma import Filter

class Scale(Filter):
    '''Multiply.'''
    factor = 2.0

    def forward(self, x, state):
        return x * self.factor
"""

COSMETIC = """
from soma import Filter

class Scale(Filter):
    '''A different docstring, and a comment below.'''
    factor = 2.0
    # comments and formatting do not change behaviour
    def forward(self, x, state):
        return x   *   self.factor    # spaced out
"""

CHANGED = """
from soma import Filter

class Scale(Filter):
    '''Multiply.'''
    factor = 2.0

    def forward(self, x, state):
        return x * self.factor + 1
"""


def test_fingerprint_ignores_comments_docstrings_formatting_but_not_code(tmp_path):
    base = _load(tmp_path, "fp_base", BASE).Scale
    cosmetic = _load(tmp_path, "fp_base_2", COSMETIC).Scale
    changed = _load(tmp_path, "fp_base_3", CHANGED).Scale
    assert filter_fingerprint(base()) != filter_fingerprint(changed())
    assert filter_fingerprint(base()) != filter_fingerprint(base(factor=3.0))
    assert filter_fingerprint(base()) == filter_fingerprint(base())
    from soma.fingerprint import _class_code

    assert _class_code(base) == _class_code(cosmetic)
    assert _class_code(base) != _class_code(changed)


def test_whole_filter_fingerprint_survives_a_cosmetic_edit_of_its_file(tmp_path):
    # The same module edited in place, as a researcher would: only code changes count.
    def fingerprint(source: str, **params) -> str:
        return filter_fingerprint(_load(tmp_path, "soma_test_cosmetic", source).Scale(**params))

    base = fingerprint(BASE)
    assert fingerprint(COSMETIC) == base
    assert fingerprint(BASE.replace("'''Multiply.'''", "'''Multiply.'''\n    # note")) == base
    assert fingerprint(CHANGED) != base
    assert fingerprint(BASE, factor=3.0) != base
    sys.modules.pop("soma_test_cosmetic", None)


def test_fingerprint_falls_back_to_bytecode_without_source():
    namespace: dict = {}
    exec(BASE, namespace)
    exec(CHANGED.replace("Scale", "Other"), namespace)
    assert filter_fingerprint(namespace["Scale"]()) != filter_fingerprint(namespace["Other"]())
    again: dict = {}
    exec(BASE, again)
    assert filter_fingerprint(namespace["Scale"]()) == filter_fingerprint(again["Scale"]())


def test_graph_fingerprint_covers_params_structure_and_predicates():
    from soma import Branch

    a = Graph.somatize(Add() >> Mul())
    assert graph_fingerprint(a) == Graph.somatize(Add() >> Mul()).fingerprint()
    assert a.fingerprint() != a.with_params({"mul.factor": 3.0}).fingerprint()
    assert a.fingerprint() != Graph.somatize(Mul() >> Add()).fingerprint()
    b1 = Graph.somatize(Branch(lambda x: x > 0, then=Add()))
    b2 = Graph.somatize(Branch(lambda x: x > 1, then=Add()))
    assert b1.fingerprint() != b2.fingerprint()


# -- graph + cache -------------------------------------------------------------------


def test_rerun_of_unchanged_graph_computes_nothing(tmp_path):
    cache = Cache(tmp_path / "cache")
    x = [1.0, 2.0, 6.0]

    def build():
        return Graph.somatize(Center() >> Keep(), cache=cache)

    g = build()
    first = g.fit_forward(x)
    assert CALLS["Center.fit"] == 1
    CALLS.clear()
    g2 = build()
    assert g2.fit_forward(x) == first
    assert g2.forward(x) == first
    assert CALLS == {}
    assert all(r.status == "cached" for r in g2.last_run.nodes.values())
    # A fresh Cache object on the same folder hits the disk tier.
    g3 = Graph.somatize(Center() >> Keep(), cache=Cache(tmp_path / "cache"))
    assert g3.fit_forward(x) == first and CALLS == {}


class Keep(Filter):
    def forward(self, x, state):
        return x


def test_changing_a_param_recomputes_only_that_node_and_descendants():
    cache = Cache()
    g = Graph.somatize(Add() >> (Mul() | Add(amount=5.0)) >> Gather2(), cache=cache)
    g.fit_forward(1.0)
    h = g.with_params({"mul.factor": 3.0})
    CALLS.clear()
    assert h.fit_forward(1.0) == [6.0, 7.0]
    status = {n: r.status for n, r in h.last_run.nodes.items()}
    assert status == {"add": "cached", "mul": "ok", "add_2": "cached", "gather2": "ok"}
    assert CALLS == {"Mul.forward:3.0": 1}


class Gather2(Filter):
    def forward(self, *inputs, state):
        return list(inputs)


STAGES = """
from soma import Filter

class First(Filter):
    def forward(self, x, state):
        return x + 1

class Middle(Filter):
    def forward(self, x, state):
        return x * 2{extra}

class Last(Filter):
    def forward(self, x, state):
        return x - 3
"""


def test_code_change_invalidates_only_that_node_and_its_descendants(tmp_path):
    # Edit one line of a filter file between runs, as a researcher would.
    cache = Cache()

    def run(extra: str):
        module = _load(tmp_path, "soma_test_stages", STAGES.format(extra=extra))
        g = Graph.somatize(module.First() >> module.Middle() >> module.Last(), cache=cache)
        out = g.forward(1)
        return out, {n: r.status for n, r in g.last_run.nodes.items()}

    assert run("") == (1, {"first": "ok", "middle": "ok", "last": "ok"})
    assert run("  # only a comment") == (
        1,
        {"first": "cached", "middle": "cached", "last": "cached"},
    )
    assert run(" + 100") == (101, {"first": "cached", "middle": "ok", "last": "ok"})
    sys.modules.pop("soma_test_stages", None)


def test_different_data_or_labels_change_keys():
    cache = Cache()
    g = Graph.somatize(Center() >> Keep(), cache=cache)
    g.fit([1.0, 2.0], y=[0, 1])
    g.fit([1.0, 2.0], y=[1, 0])
    assert CALLS["Center.fit"] == 2  # y is part of the state key
    g.fit([1.0, 2.0, float("nan")], y=[1, 0, 1])
    g.fit([1.0, 2.0, float("inf")], y=[1, 0, 1])
    assert CALLS["Center.fit"] == 4


def test_arrays_are_stored_as_npy_and_others_as_pickles(tmp_path):
    cache = Cache(tmp_path)
    array_key, object_key = "a" * 64, "b" * 64
    cache.put(array_key, np.arange(10.0))
    cache.put(object_key, {"model": [1, 2]})
    assert np.load(tmp_path / "aa" / f"{array_key}.npy").tolist() == list(np.arange(10.0))
    assert (tmp_path / "bb" / f"{object_key}.pkl").exists()
    fresh = Cache(tmp_path)
    found, value = fresh.get(array_key)
    assert found and isinstance(value, np.ndarray) and value.sum() == 45
    assert fresh.get(object_key) == (True, {"model": [1, 2]})
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files
    stats = fresh.stats()
    assert stats.disk_entries == 2 and stats.disk_bytes > 0 and stats.hits == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_corrupt_entry_is_detected_deleted_and_recomputed(tmp_path, damage):
    g = Graph.somatize(Center() >> Keep(), cache=Cache(tmp_path))
    expected = g.fit_forward([1.0, 5.0])
    state_key = next(k for (n, _), k in g._state_keys.items() if n == "center")
    payload = tmp_path / state_key[:2] / f"{state_key}.pkl"
    data = payload.read_bytes()
    if damage == "truncate":
        payload.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        payload.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        (tmp_path / state_key[:2] / f"{state_key}.meta").write_text("{not json")
    CALLS.clear()
    fresh_cache = Cache(tmp_path)  # empty memory tier: must read the damaged file
    g2 = Graph.somatize(Center() >> Keep(), cache=fresh_cache)
    assert g2.fit_forward([1.0, 5.0]) == expected
    assert CALLS["Center.fit"] == 1  # recomputed, not returned
    assert fresh_cache.stats().corrupt_entries == 1
    assert Cache(tmp_path).get(state_key) == (True, 3.0)  # rewritten intact


def test_memory_tier_is_an_lru_and_clear_empties_both_tiers(tmp_path):
    cache = Cache(tmp_path, memory_items=2)
    for i in range(3):
        cache.put(f"{i:064x}", i)
    assert cache.stats().memory_entries == 2
    assert cache.lookup(f"{0:064x}")[2] == "disk"
    assert cache.lookup(f"{0:064x}")[2] == "memory"
    cache.clear()
    stats = cache.stats()
    assert stats.memory_entries == 0 and stats.disk_entries == 0
    assert cache.get(f"{1:064x}") == (False, None)
    with pytest.raises(ValidationError, match="memory_items"):
        Cache(memory_items=-1)


def test_unpicklable_values_stay_in_memory_and_do_not_fail_the_run(tmp_path):
    class Lock(Filter):
        def forward(self, x, state):
            return threading.Lock()

    g = Graph.somatize(Lock(), cache=Cache(tmp_path))
    assert g.forward(1) is not None


def test_opt_out_filters_are_never_cached():
    class Fresh(Filter):
        _soma_cacheable = False

        def forward(self, x, state):
            CALLS["fresh"] += 1
            return x

    cache = Cache()
    g = Graph.somatize(Add() >> Fresh() >> Mul(), cache=cache)
    g.forward(1.0)
    g.forward(1.0)
    assert CALLS["fresh"] == 2 and CALLS["Add.forward:1.0"] == 1
    assert g.last_run.nodes["fresh"].status == "ok" and g.last_run.nodes["mul"].status == "cached"


def test_one_cache_shared_by_many_graphs_and_threads():
    cache = Cache()
    errors: list[BaseException] = []
    results: list[float] = []

    def work(i: int) -> None:
        try:
            g = Graph.somatize(Add(amount=float(i % 4)) >> Mul(), cache=cache, max_workers=2)
            for _ in range(20):
                results.append(g.forward(1.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 160
    assert sorted(set(results)) == [2.0, 4.0, 6.0, 8.0]
    assert CALLS["Mul.forward:2.0"] <= 8  # computed at most once per distinct key per race


def test_unhashable_graph_input_is_a_clear_cache_error():
    from soma import CacheError

    g = Graph.somatize(Keep(), cache=Cache())
    with pytest.raises(CacheError, match=r"cannot hash the graph input x \(lock\)"):
        g.forward(threading.Lock())
    assert Graph.somatize(Keep()).forward(lock := threading.Lock()) is lock  # no cache: fine


def test_regression_clear_deletes_only_the_caches_own_files(tmp_path):
    # Cache.clear() used to delete every two-letter subfolder: a cache pointed at a
    # project folder wiped `ui/`, `db/` and the like.
    folder = tmp_path / "mixed"
    (folder / "ui").mkdir(parents=True)
    (folder / "ui" / "app.js").write_text("keep me")
    (folder / "ab").mkdir()
    (folder / "ab" / "notes.txt").write_text("keep me too")
    cache = Cache(folder)
    key = "ab" + "0" * 62
    cache.put(key, np.arange(3))
    assert cache.stats().disk_entries == 1
    cache.clear()
    assert cache.stats().disk_entries == 0
    assert (folder / "ui" / "app.js").read_text() == "keep me"
    assert (folder / "ab" / "notes.txt").read_text() == "keep me too"
    assert not list((folder / "ab").glob(f"{key}.*"))


def test_regression_cache_cli_on_a_file_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from soma.cli import _register, app

    _register()
    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("x")
    for command in ("stats", "clear"):
        result = CliRunner().invoke(app, ["cache", command, "--cache-dir", str(not_a_folder)])
        assert result.exit_code == 1
        assert "--cache-dir: expected a folder" in result.output
        assert "Traceback" not in result.output


# -- keys: NaN, infinities, fan-in names ---------------------------------------------


class Ident(Filter):
    def forward(self, x, state):
        CALLS["Ident.forward"] += 1
        return np.asarray(x) * 1.0


def test_nan_and_infinities_as_graph_input_are_separate_cache_entries():
    # The reference hashed data through JSON, where NaN, +inf and -inf all become null:
    # a run on [inf] returned the result cached for [nan].
    g = Graph.somatize(Ident(), cache=Cache())
    outputs = [g.forward(np.array([v])) for v in (math.nan, math.inf, -math.inf)]
    assert CALLS["Ident.forward"] == 3
    assert np.isnan(outputs[0][0]) and outputs[1][0] == math.inf and outputs[2][0] == -math.inf
    again = g.forward(np.array([math.nan]))  # NaN != NaN, but its key is stable
    assert CALLS["Ident.forward"] == 3 and np.isnan(again[0])
    assert g.last_run.nodes["ident"].status == "cached"
    assert Graph.somatize(Ident(), cache=Cache()).forward([math.inf, math.nan]).tolist()[0] == (
        math.inf
    )


def test_nan_and_infinities_as_plain_params_give_different_fingerprints():
    class Fill(Filter):
        value = 0.0

        def forward(self, x, state):
            return self.value

    prints = [filter_fingerprint(Fill(value=v)) for v in (math.nan, math.inf, -math.inf, 0.0)]
    assert len(set(prints)) == 4
    assert filter_fingerprint(Fill(value=math.nan)) == prints[0]


class Names(Filter):
    def forward(self, x, state):
        return sorted(x)


def test_regression_renamed_fan_in_predecessors_do_not_hit_the_old_keyed_dict():
    # A one-parameter fan-in receives a dict keyed by predecessor name, but the names were
    # not in its cache key: renaming a predecessor returned the dict with the old names.
    cache = Cache()

    def build(first: str, second: str) -> Graph:
        g = Graph(cache=cache)
        a, b = g.node(Add(), name=first), g.node(Mul(), name=second)
        names = g.node(Names(), name="names")
        g.connect(a, names)
        g.connect(b, names)
        return g

    assert build("a", "b").forward(1.0) == ["a", "b"]
    renamed = build("c", "d")
    assert renamed.forward(1.0) == ["c", "d"]
    assert renamed.last_run.nodes["c"].status == "cached"  # same filter, same input: a hit
    assert renamed.last_run.nodes["names"].status == "ok"


# -- recomputing exactly what changed -------------------------------------------------


class ShiftAll(Filter):
    amount = 1.0

    def forward(self, x, state):
        return [v + self.amount for v in x]


def test_changing_a_param_refits_only_that_node_and_its_descendants():
    cache = Cache()
    x = [1.0, 2.0, 6.0]
    g = Graph.somatize(Center() >> ShiftAll() >> Center(), cache=cache)
    first = g.fit_forward(x)
    assert CALLS["Center.fit"] == 2
    CALLS.clear()
    h = g.with_params({"shift_all.amount": 5.0})
    assert h.fit_forward(x) == first  # centering removes the shift either way
    status = {n: r.status for n, r in h.last_run.nodes.items()}
    assert status == {"center": "cached", "shift_all": "ok", "center_2": "ok"}
    assert CALLS["Center.fit"] == 1  # only the downstream Center was refitted


HELPERS = """
from soma import Filter

OFFSET = {offset}

def helper(x):
    {helper}

class First(Filter):
    def forward(self, x, state):
        return x + 1

class UsesHelper(Filter):
    def forward(self, x, state):
        return helper(x) + OFFSET

class Last(Filter):
    def forward(self, x, state):
        return x * 10
"""


def test_regression_editing_a_helper_or_constant_the_filter_uses_recomputes(tmp_path):
    # Only the class's own source was fingerprinted: editing a module-level helper the
    # filter calls (or a constant it reads) returned results of the old code.
    cache = Cache()

    def run(offset: str, helper: str):
        source = HELPERS.format(offset=offset, helper=helper)
        module = _load(tmp_path, "soma_test_helpers", source)
        g = Graph.somatize(module.First() >> module.UsesHelper() >> module.Last(), cache=cache)
        out = g.forward(1)
        return out, [r.status for r in g.last_run.nodes.values()]

    assert run("0", "return x * 2") == (40, ["ok", "ok", "ok"])
    assert run("0", "return x  *  2  # same code") == (40, ["cached", "cached", "cached"])
    assert run("0", "return x * 3") == (60, ["cached", "ok", "ok"])
    assert run("1", "return x * 3") == (70, ["cached", "ok", "ok"])
    sys.modules.pop("soma_test_helpers", None)


def test_regression_classes_made_by_a_factory_differ_by_their_closure_values():
    # Two classes from one factory share their source; only the closed-over value differs.
    def make(factor: float) -> type[Filter]:
        class Times(Filter):
            def forward(self, x, state):
                return x * factor

        return Times

    cache = Cache()
    assert Graph.somatize(make(2.0)(), cache=cache).forward(1.0) == 2.0
    assert Graph.somatize(make(3.0)(), cache=cache).forward(1.0) == 3.0
    assert filter_fingerprint(make(2.0)()) == filter_fingerprint(make(2.0)())


# -- the tiers protect their entries --------------------------------------------------


class Source(Filter):
    def forward(self, x, state):
        return np.array(x, dtype=float)


class EditsInPlace(Filter):
    def forward(self, x, state):
        x += 100.0
        return x


def test_regression_an_in_place_edit_downstream_does_not_change_a_cached_array():
    # The memory tier handed out the very array a successor then edited in place, so the
    # next run got the edited array as a cache hit.
    cache = Cache()
    assert Graph.somatize(Source() >> EditsInPlace(), cache=cache).forward([1.0]).tolist() == [
        101.0
    ]
    again = Graph.somatize(Source(), cache=cache)
    assert again.forward([1.0]).tolist() == [1.0]
    assert again.last_run.nodes["source"].status == "cached"
    hit = Graph.somatize(Source() >> EditsInPlace(), cache=cache)
    assert hit.forward([1.0]).tolist() == [101.0]  # a hit behaves like a miss
    assert again.forward([1.0]).tolist() == [1.0]


def test_memory_items_is_validated_when_set_and_shrinking_trims():
    cache = Cache(memory_items=3)
    for i in range(3):
        cache.put(f"{i:064x}", i)
    cache.memory_items = 1
    assert cache.stats().memory_entries == 1 and cache.get(f"{2:064x}") == (True, 2)
    for bad in (-1, True, 1.5, None):
        with pytest.raises(ValidationError, match="memory_items"):
            cache.memory_items = bad  # type: ignore[assignment]
    cache.put(f"{5:064x}", 5)  # a rejected size left the cache working
    assert cache.memory_items == 1


@pytest.mark.parametrize("damage", ["truncate", "missing_payload", "empty_meta"])
def test_corrupt_array_entry_is_recomputed(tmp_path, damage):
    g = Graph.somatize(Source(), cache=Cache(tmp_path))
    g.forward([1.0, 2.0])
    key = g.last_run.nodes["source"].key
    payload = tmp_path / key[:2] / f"{key}.npy"
    if damage == "truncate":
        payload.write_bytes(payload.read_bytes()[:-8])
    elif damage == "missing_payload":
        payload.unlink()
    else:
        (tmp_path / key[:2] / f"{key}.meta").write_bytes(b"")
    fresh = Graph.somatize(Source(), cache=Cache(tmp_path))
    assert fresh.forward([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert fresh.last_run.nodes["source"].status == "ok"  # recomputed, not returned
    assert Cache(tmp_path).get(key)[1].tolist() == [1.0, 2.0]  # and rewritten intact


STABLE = """
from soma import Branch, Filter, Graph

WORDS = ("alpha", "beta")

def keep(x):
    return x in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}

class Pick(Filter):
    mode = "a"

    def forward(self, x, state):
        return keep(x) or x in {"iota", "kappa", "lambda", "mu", "nu", "xi", "omicron"}

GRAPH = Graph.somatize(
    Branch(lambda x: x in {"pi", "rho", "sigma", "tau", "upsilon", "phi", "chi"}, then=Pick())
)
namespace = {}
exec(
    "from soma import Filter\\n"
    "class NoSource(Filter):\\n"
    "    def forward(self, x, state):\\n"
    "        return x in {'psi', 'omega', 'one', 'two', 'three', 'four', 'five', 'six'}\\n",
    namespace,
)
NO_SOURCE = namespace["NoSource"]
"""

PRINT_FINGERPRINTS = """
import importlib.util, json, sys
from soma.fingerprint import filter_fingerprint
spec = importlib.util.spec_from_file_location("soma_test_stable", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["soma_test_stable"] = module
spec.loader.exec_module(module)
print(json.dumps([
    filter_fingerprint(module.Pick()),
    module.GRAPH.fingerprint(),
    filter_fingerprint(module.NO_SOURCE()),
]))
"""


def test_regression_fingerprints_are_the_same_in_every_process(tmp_path):
    # Code constants were hashed by repr(): a set literal's repr follows the per-process
    # string hash seed, so a predicate's (and a source-less class's) fingerprint changed
    # between processes, and so did the graph fingerprint recorded with each experiment.
    import json
    import os
    import subprocess

    path = tmp_path / "soma_test_stable.py"
    path.write_text(STABLE)
    results = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", PRINT_FINGERPRINTS, str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1] == results[2]
    module = _load(tmp_path, "soma_test_stable", STABLE)
    assert filter_fingerprint(module.Pick()) == results[0][0]  # and in this process
    sys.modules.pop("soma_test_stable", None)


def test_a_write_that_dies_before_its_meta_is_renamed_leaves_no_entry(tmp_path, monkeypatch):
    # Payload first, then meta: a crash between the two renames leaves a payload that no
    # reader trusts (no meta), and no temporary files.
    import os

    real_replace = os.replace

    def dying_replace(src, dst):
        if str(dst).endswith(".meta"):
            raise OSError("disk full")
        real_replace(src, dst)

    key = "cd" * 32
    monkeypatch.setattr(os, "replace", dying_replace)
    assert Cache(tmp_path).put(key, np.arange(4.0)) is False  # reported, not raised
    monkeypatch.setattr(os, "replace", real_replace)
    assert not list(tmp_path.rglob("*.tmp"))
    fresh = Cache(tmp_path)
    assert fresh.get(key) == (False, None) and fresh.stats().disk_entries == 0


def test_memory_items_zero_is_a_disk_only_cache(tmp_path):
    cache = Cache(tmp_path, memory_items=0)
    cache.put("ef" * 32, [1, 2])
    assert cache.lookup("ef" * 32) == (True, [1, 2], "disk")
    assert cache.stats().memory_entries == 0


def test_regression_an_entry_copied_over_another_key_is_not_returned(tmp_path):
    # Both files of entry B replaced by entry A's: checksums match, yet it is A's value.
    cache = Cache(tmp_path)
    a, b = "a" * 64, "b" * 64
    cache.put(a, {"who": "a"})
    cache.put(b, {"who": "b"})
    for suffix in ("meta", "pkl"):
        (tmp_path / "bb" / f"{b}.{suffix}").write_bytes(
            (tmp_path / "aa" / f"{a}.{suffix}").read_bytes()
        )
    fresh = Cache(tmp_path)
    assert fresh.get(b) == (False, None)
    assert fresh.stats().corrupt_entries == 1
    assert fresh.get(a) == (True, {"who": "a"})


def test_regression_a_folder_in_place_of_an_entry_is_a_miss_and_the_node_recomputes(tmp_path):
    g = Graph.somatize(Center() >> Keep(), cache=Cache(tmp_path))
    expected = g.fit_forward([1.0, 5.0])
    state_key = next(k for (n, _), k in g._state_keys.items() if n == "center")
    for suffix in ("meta", "pkl"):
        entry = tmp_path / state_key[:2] / f"{state_key}.{suffix}"
        entry.unlink()
        entry.mkdir()
    CALLS.clear()
    fresh_cache = Cache(tmp_path)
    assert state_key not in fresh_cache
    assert fresh_cache.get(state_key) == (False, None)
    g2 = Graph.somatize(Center() >> Keep(), cache=fresh_cache)
    assert g2.fit_forward([1.0, 5.0]) == expected
    assert CALLS["Center.fit"] == 1
