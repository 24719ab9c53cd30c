"""Pipeline files, ``soma run`` and ``soma cache``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soma import Filter, Graph, ProjectError, ValidationError
from soma.cli import _register, app
from soma.pipeline_file import load_pipeline_file, split_ref

PIPELINE = """
import numpy as np
from soma import Filter, Graph, search

class Standardize(Filter):
    def fit(self, x, y=None):
        return x.mean(0), x.std(0) + 1e-9

    def forward(self, x, state):
        return (x - state[0]) / state[1]

class Ridge(Filter):
    alpha = search(1e-3, 1e3, log=True, default=1.0)

    def fit(self, x, y=None):
        return np.linalg.solve(x.T @ x + self.alpha * np.eye(x.shape[1]), x.T @ y)

    def forward(self, x, state):
        return x @ state

pipeline = Standardize() >> Ridge(alpha=0.5)
other = Graph.somatize(Ridge())

def as_function():
    return Standardize() >> Ridge(alpha=2.0)

def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = x @ np.arange(4.0)
    return {shape}

def mse(y_true, y_pred):
    return float(np.mean((y_true - y_pred) ** 2))

metric = mse
direction = {direction!r}
"""


def write(tmp_path: Path, shape: str = "x[:80], y[:80], x[80:], y[80:]", direction="minimize"):
    path = tmp_path / "pipe.py"
    path.write_text(textwrap.dedent(PIPELINE.format(shape=shape, direction=direction)))
    return path


def test_split_ref():
    assert split_ref("a/b.py") == (Path("a/b.py"), "pipeline")
    assert split_ref("a/b.py:model") == (Path("a/b.py"), "model")
    assert split_ref("C:/x/b.py") == (Path("C:/x/b.py"), "pipeline")


def test_load_pipeline_file_variants(tmp_path):
    path = write(tmp_path)
    loaded = load_pipeline_file(str(path))
    assert loaded.name == "pipeline" and loaded.direction == "minimize"
    graph = loaded.graph_factory()
    assert isinstance(graph, Graph) and graph.params == {"ridge.alpha": 0.5}
    assert graph is not loaded.graph_factory()  # fresh every call
    splits = loaded.splits()
    assert splits.has_validation and splits.x_train.shape == (80, 4)
    pred = graph.fit(splits.x_train, splits.y_train).forward(splits.x_valid)
    assert loaded.score(splits.y_valid, pred) < 0.1
    assert load_pipeline_file(f"{path}:other").graph_factory().params == {"ridge.alpha": 1.0}
    assert load_pipeline_file(f"{path}:as_function").graph_factory().params["ridge.alpha"] == 2.0


def test_pipeline_file_errors(tmp_path):
    with pytest.raises(ProjectError, match="not found"):
        load_pipeline_file(str(tmp_path / "missing.py"))
    path = write(tmp_path)
    with pytest.raises(ProjectError, match=r"no 'nope' defined.*pipelines found: other, pipeline"):
        load_pipeline_file(f"{path}:nope")
    bad_shape = write(tmp_path, shape="x, y, x")
    with pytest.raises(ProjectError, match="got a 3-tuple"):
        load_pipeline_file(str(bad_shape)).splits()
    with pytest.raises(ValidationError, match="direction"):
        load_pipeline_file(str(write(tmp_path, direction="minimise")))
    no_data = tmp_path / "nodata.py"
    no_data.write_text("from soma import Filter\npipeline = None\n")
    with pytest.raises(ProjectError, match="define data"):
        load_pipeline_file(str(no_data))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ProjectError, match="boom at import"):
        load_pipeline_file(str(broken))


def test_two_value_data_runs_forward_on_training_data(tmp_path):
    splits = load_pipeline_file(str(write(tmp_path, shape="x, y"))).splits()
    assert not splits.has_validation and splits.x_valid is splits.x_train


@pytest.fixture()
def runner():
    _register()
    return CliRunner()


def test_soma_run_twice_second_is_all_cache_hits(tmp_path, runner, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path)
    first = runner.invoke(app, ["run", str(path), "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["cache_hits"] == 0 and summary["score"] < 0.1
    assert summary["cache_dir"] == str(tmp_path.resolve() / ".soma" / "cache")
    second = json.loads(runner.invoke(app, ["run", str(path), "--json"]).stdout)
    assert second["cache_misses"] == 0 and second["cache_hits"] == 4
    assert second["score"] == summary["score"]
    text = runner.invoke(app, ["run", f"{path}:pipeline"])
    assert text.exit_code == 0 and "cache hit" in text.output and "mse" in text.output

    stats = runner.invoke(app, ["cache", "stats", "--json"])
    assert json.loads(stats.stdout)["entries"] == 5
    cleared = runner.invoke(app, ["cache", "clear", "--yes"])
    assert cleared.exit_code == 0 and "cleared 5 entries" in cleared.output
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["entries"] == 0


def test_soma_run_options_and_errors(tmp_path, runner):
    path = write(tmp_path)
    cache_dir = tmp_path / "elsewhere"
    out = runner.invoke(app, ["run", str(path), "--cache-dir", str(cache_dir), "--json"])
    assert out.exit_code == 0 and any(cache_dir.iterdir())
    no_cache = runner.invoke(app, ["run", str(path), "--no-cache", "--json", "-p", str(tmp_path)])
    assert json.loads(no_cache.stdout)["cache_dir"] is None
    assert not (tmp_path / ".soma").exists()
    missing = runner.invoke(app, ["run", str(tmp_path / "nope.py")])
    assert missing.exit_code == 1 and "not found" in missing.output
    failing = tmp_path / "failing.py"
    failing.write_text(
        "from soma import Filter\n"
        "class Boom(Filter):\n"
        "    def forward(self, x, state):\n"
        "        raise ValueError('bad input')\n"
        "pipeline = Boom()\n"
        "def data():\n"
        "    return [1], [1]\n"
    )
    result = runner.invoke(app, ["run", str(failing), "--no-cache"])
    assert result.exit_code == 1 and "node 'boom' failed during" in result.output
    assert "bad input" in result.output


def test_demo_file_is_a_valid_pipeline_file():
    demo = Path(__file__).resolve().parents[2] / "tools" / "demo.py"
    loaded = load_pipeline_file(str(demo))
    assert loaded.direction == "maximize" and loaded.metric is not None
    assert loaded.graph_factory().summary().startswith("Standardize >> (PCA(n_components=24)")


def test_soma_run_progress_advances_once_per_node_and_names_it():
    import io

    from rich.console import Console

    from soma.cli.run import _NodeProgress

    class Step(Filter):
        def forward(self, x, state):
            return x

    graph = Graph.somatize(Step() >> (Step() | Step()) >> Gather3(), max_workers=1)
    progress = _NodeProgress(Console(file=io.StringIO()), graph)
    snapshots: list[tuple[str, float, str]] = []

    def snapshot(event) -> None:  # registered after the progress bar: sees its update
        if event.kind == "node_finished":
            task = progress.progress.tasks[progress.task]
            snapshots.append((event.node, task.completed, task.fields["node"]))

    graph.on_event(snapshot)
    with progress:
        progress.phase("forward", len(graph))
        graph.forward(1)
    assert [completed for _node, completed, _shown in snapshots] == [1, 2, 3, 4]
    assert [shown for _node, _completed, shown in snapshots] == [n for n, _c, _s in snapshots]
    assert {node for node, _c, _s in snapshots} == {"step", "step_2", "step_3", "gather3"}


class Gather3(Filter):
    def forward(self, *inputs, state):
        return list(inputs)


def test_soma_run_prints_a_progress_line_per_phase(tmp_path, runner):
    result = runner.invoke(app, ["run", str(write(tmp_path)), "--no-cache"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("fit") and "2/2" in line for line in lines)
    assert any(line.startswith("forward") and "2/2" in line for line in lines)


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_soma_run_rejects_zero_or_negative_max_workers(tmp_path, runner, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(write(tmp_path)), "--max-workers", bad])
    assert result.exit_code == 2 and "max-workers" in result.output
    assert not (tmp_path / ".soma").exists()


def test_soma_version(runner):
    import importlib.metadata

    import soma

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"soma {soma.__version__}"
    assert importlib.metadata.version("soma-research") == soma.__version__
