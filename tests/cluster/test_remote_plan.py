"""Placement on graph nodes and the compiled Remote step, without a cluster."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from soma import Cache, Filter, Graph
from soma.cluster._errors import RemoteNodeError
from soma.errors import ExecutionError, GraphError, ValidationError
from soma.plan import Remote


class Center(Filter):
    def fit(self, x, y=None):
        return sum(x) / len(x)

    def forward(self, x, state):
        return [v - state for v in x]


class Scale(Filter):
    factor = 2.0

    def forward(self, x, state):
        return [v * self.factor for v in x]


def _graph(cache: Cache | None = None) -> Graph:
    g = Graph(cache=cache)
    a = g.node(Center(), resources={"GPU": 1, "memory": "2G"}, tags=["gpu"])
    b = g.node(Scale())
    g.connect(a, b)
    return g


def test_placed_node_compiles_to_a_remote_step_shown_in_the_plan() -> None:
    plan = _graph().compile()
    assert isinstance(plan.root.steps[0], Remote)
    assert str(plan).splitlines() == [
        "Sequence:",
        "  Remote(center @ GPU=1, memory=2048MiB, tag:gpu)",
        "  Execute(scale)",
    ]
    cached = _graph(Cache()).compile()
    assert "Remote(center @ GPU=1, memory=2048MiB, tag:gpu, cached)" in str(cached)


def test_text_mermaid_and_dot_views_show_the_placement() -> None:
    g = _graph()
    assert "├── center (Center) @ GPU=1, memory=2048MiB, tag:gpu" in g.to_text()
    mermaid = g.to_mermaid()
    assert 'n0["center<br/>Center<br/>remote @ GPU=1, memory=2048MiB, tag:gpu"]' in mermaid
    assert "class n0 remote" in mermaid and "n1" not in mermaid.split("class ")[-1]
    assert "Center @ GPU=1, memory=2048MiB, tag:gpu" in g.to_dot()


def test_without_a_lab_a_remote_step_runs_here() -> None:
    g = _graph(Cache())
    assert g.fit_forward([1.0, 2.0, 3.0]) == [-2.0, 0.0, 2.0]
    assert g.fit_forward([1.0, 2.0, 3.0]) == [-2.0, 0.0, 2.0]
    assert g.last_run.nodes["center"].status == "cached"


def test_placement_survives_copies_and_stays_out_of_the_fingerprint() -> None:
    g = _graph()
    copy = g.with_params({"scale.factor": 3.0})
    assert isinstance(copy.compile().root.steps[0], Remote)
    plain = Graph()
    plain.connect(plain.node(Center()), plain.node(Scale()))
    assert plain.fingerprint() == g.fingerprint()  # where a node runs changes no result


def test_place_names_the_node_and_the_field() -> None:
    g = Graph()
    g.node(Center())
    with pytest.raises(GraphError, match="unknown node 'nope'"):
        g.place("nope", tags=["gpu"])
    with pytest.raises(ValidationError, match=r"resources\['GPU'\]"):
        g.place("center", resources={"GPU": "one"})
    with pytest.raises(ValidationError, match="tags"):
        g.place("center", tags=["no spaces"])
    g.place("center", tags="big-ram")
    assert g.placements["center"].tags == ("big-ram",)


def test_remote_node_error_names_node_and_worker_and_pickles() -> None:
    error = RemoteNodeError("model", "fit", ValueError("bad input"), "tagged")
    assert str(error) == "node 'model' failed during fit on worker 'tagged': ValueError: bad input"
    assert isinstance(error, ExecutionError)
    again = pickle.loads(pickle.dumps(error))
    assert (again.node, again.worker, str(again)) == ("model", "tagged", str(error))


def test_soma_execution_stays_ray_free() -> None:
    code = (
        "import soma, soma.execution, sys; from soma.execution import RayBackend; "
        "assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_project_cluster_section_is_validated_naming_the_key() -> None:
    from soma.errors import ProjectError
    from soma.project._config import parse_config

    base = '[metric]\nname = "accuracy"\n[cluster]\n'
    config = parse_config(base + 'address = "10.0.0.5:6379"\nn_jobs = 4\n', default_name="p")
    assert (config.cluster.address, config.cluster.n_jobs) == ("10.0.0.5:6379", 4)
    assert parse_config('[metric]\nname = "accuracy"\n', default_name="p").cluster.address is None
    with pytest.raises(ProjectError, match=r"\[cluster\] address: expected HOST:PORT"):
        parse_config(base + 'address = "nope"\n', default_name="p")
    with pytest.raises(ProjectError, match=r"\[cluster\] n_jobs"):
        parse_config(base + "n_jobs = 0\n", default_name="p")


def test_study_on_a_lab_refuses_a_pruner_and_a_non_lab() -> None:
    import numpy as np

    from soma.study import Study

    x = np.zeros(4)
    with pytest.raises(ValidationError, match=r"lab: expected a soma\.cluster\.Lab"):
        Study(Center(), data=(x, x), metric="mse", n_trials=1, lab="127.0.0.1:1")
    from soma.cluster.lab import Lab

    lab = Lab("127.0.0.1:1", local=False)  # never connected: the check comes first
    with pytest.raises(ValidationError, match="pruner: trials on a cluster"):
        Study(Center(), data=(x, x), metric="mse", n_trials=1, lab=lab, pruner="median")


def test_project_code_ships_by_value_installed_code_by_reference() -> None:
    from soma.cluster._node_step import _needs_value

    assert _needs_value("_soma_filters_0123456789")  # a project's filters/ folder
    assert not any(_needs_value(t) for t in ("soma", "soma_tools", "json", "numpy", "pytest"))


def test_data_refs_stay_refs_only_when_every_reader_is_a_remote_step() -> None:
    from soma.cluster._node_step import inputs_stay_refs

    placed = Graph()
    placed.node(Center(), tags=["gpu"])
    assert inputs_stay_refs(placed.compile(), fitting=True)
    assert inputs_stay_refs(_graph().compile(), fitting=False)  # 'scale' reads center's output
    local_reader = Graph()
    a = local_reader.node(Scale())  # reads the graph input here: the driver needs the data
    b = local_reader.node(Center(), tags=["gpu"])
    local_reader.connect(a, b)
    assert not inputs_stay_refs(local_reader.compile(), fitting=False)
    fits_here = Graph()
    a = fits_here.node(Scale(), tags=["gpu"])
    b = fits_here.node(Center())  # stateful and local: its fit takes y, here
    fits_here.connect(a, b)
    assert inputs_stay_refs(fits_here.compile(), fitting=False)
    assert not inputs_stay_refs(fits_here.compile(), fitting=True)


def test_a_worker_reads_data_refs_from_their_store(tmp_path) -> None:
    import numpy as np

    from soma.cluster._remote import node_task
    from soma.data import LocalStore
    from soma.training import FitCall, Local

    class Mean(Filter):
        def fit(self, x, y=None):
            return float(np.mean(x) + np.mean(y))

        def forward(self, x, state):
            return np.asarray(x) - state

    store = LocalStore(tmp_path)
    x, y = store.put(np.arange(6.0)), store.put(np.ones(6))
    call = FitCall("mean", Mean(), (x,), y, True)
    state, out = node_task(Local(), call, Mean(), (x,), None, False, True)
    assert state == 3.5 and out.tolist() == [v - 3.5 for v in range(6)]
