"""``init_project`` / ``soma init``: scaffolds that load, discover and run offline at once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from soma import Graph, ProjectError
from soma.cli import _register, app
from soma.project import EXAMPLES, init_project, load_project

EXPECTED_FILTERS = [
    "KNN",
    "LogReg",
    "MinMaxScale",
    "PCA",
    "RandomForest",
    "RobustScale",
    "SGD",
    "SVC",
    "SelectKBest",
    "StandardScale",
]


def fit_and_score(project, spec, splits=None):
    splits = splits or project.load_data()
    graph = Graph.somatize(project.parse_spec(spec))
    graph.fit(*splits.train)
    return project.score(splits.valid[1], graph.forward(splits.valid[0]))


def test_digits_scaffold_loads_discovers_and_runs(digits_root):
    project = load_project(digits_root)
    assert project.name == digits_root.name
    assert [m.name for m in project.metrics] == ["accuracy", "f1_macro"]
    catalog = project.discover_filters()
    assert catalog.errors == {}
    assert catalog.names() == EXPECTED_FILTERS
    for name in EXPECTED_FILTERS:
        assert catalog[name].doc, f"{name} needs a one-line docstring"
    for name in ("PCA", "SelectKBest", "LogReg", "SVC", "RandomForest", "KNN", "SGD"):
        assert catalog[name].cls.search_space(), f"{name} should declare search spaces"
    assert catalog["LogReg"].params["C"]["log"] is True
    assert set(catalog["SGD"].cls.search_space()) >= {"epochs", "learning_rate"}

    splits = project.load_data()
    assert splits.describe() == "train 1078 × 64, valid 359 × 64, test 360 × 64"
    assert project.load_data().fingerprint == splits.fingerprint  # deterministic split
    # Stratified: every class appears in every split in (nearly) the same proportion.
    for part in (splits.train, splits.valid, splits.test):
        counts = np.bincount(part[1], minlength=10) / len(part[1])
        assert counts.min() > 0.08 and counts.max() < 0.12

    scores = fit_and_score(project, "StandardScale() >> LogReg(C=1.0)", splits)
    assert scores["accuracy"] > 0.9
    assert 0.9 < scores["f1_macro"] <= 1.0


@pytest.mark.parametrize(
    ("spec", "floor"),
    [
        ("StandardScale >> SVC", 0.95),
        ("MinMaxScale >> KNN", 0.95),
        ("RobustScale >> PCA(n_components=20) >> RandomForest(n_estimators=50)", 0.85),
        ("StandardScale >> SelectKBest(k=40) >> SGD(epochs=10)", 0.85),
        ("StandardScale >> PCA(whiten=True) >> LogReg(C=0.1)", 0.85),
    ],
)
def test_every_template_filter_works_on_digits(digits_root, spec, floor):
    assert fit_and_score(load_project(digits_root), spec)["accuracy"] > floor


@pytest.mark.parametrize("example", ["wine", "breast_cancer"])
def test_other_examples(tmp_path, example):
    project = load_project(init_project(tmp_path / example, example=example))
    catalog = project.discover_filters()
    assert catalog.errors == {} and catalog.names() == EXPECTED_FILTERS
    n_features = EXAMPLES[example].n_features
    assert catalog["PCA"].params["n_components"]["high"] == n_features
    splits = project.load_data()
    assert splits.train[0].shape[1] == n_features
    # PCA asks for more components than the data has by default only within bounds.
    assert fit_and_score(project, "StandardScale >> PCA >> LogReg", splits)["accuracy"] > 0.85


def test_init_refuses_to_overwrite_unless_forced(tmp_path):
    root = init_project(tmp_path / "p")
    (root / "notes.md").write_text("mine", encoding="utf-8")
    (root / "data.py").write_text("# edited\n", encoding="utf-8")
    with pytest.raises(ProjectError) as info:
        init_project(root)
    assert "already holds data.py, filters/models.py" in str(info.value)
    assert (root / "data.py").read_text(encoding="utf-8") == "# edited\n"  # untouched
    init_project(root, example="wine", force=True)
    assert "load_wine" in (root / "data.py").read_text(encoding="utf-8")
    assert (root / "notes.md").read_text(encoding="utf-8") == "mine"  # never touched


def test_init_merges_an_existing_gitignore(tmp_path):
    (tmp_path / ".gitignore").write_text("*.log", encoding="utf-8")
    init_project(tmp_path)
    lines = (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines == ["*.log", ".soma/", "__pycache__/"]


def test_init_rejects_unknown_examples(tmp_path):
    with pytest.raises(ProjectError, match="unknown example 'iris'; expected one of digits"):
        init_project(tmp_path, example="iris")
    assert list(tmp_path.iterdir()) == []


def test_name_is_escaped_into_toml(tmp_path):
    project = load_project(init_project(tmp_path / "x", name='my "quoted" \\ project'))
    assert project.name == 'my "quoted" \\ project'


# -- command line ------------------------------------------------------------------------

runner = CliRunner()
_register()


def test_cli_init_show_filters_and_spec(tmp_path):
    root = tmp_path / "cli"
    result = runner.invoke(app, ["init", str(root), "--example", "wine"])
    assert result.exit_code == 0, result.output
    assert "Created project 'cli'" in result.output
    again = runner.invoke(app, ["init", str(root)])
    assert again.exit_code == 1 and "already holds" in again.output

    shown = runner.invoke(app, ["project", "show", "--project", str(root), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert info["name"] == "cli"
    assert info["data"]["splits"] == "train 106 × 13, valid 36 × 13, test 36 × 13"
    assert [f["name"] for f in info["filters"]] == EXPECTED_FILTERS

    listed = runner.invoke(app, ["project", "filters", "-p", str(root), "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output)["errors"] == {}

    spec = runner.invoke(
        app, ["project", "spec", "StandardScale >> LogReg(C=2)", "-p", str(root), "--run", "--json"]
    )
    assert spec.exit_code == 0, spec.output
    out = json.loads(spec.output)
    assert out["expression"] == "StandardScale() >> LogReg(C=2.0)"
    assert out["json"] == {
        "chain": [{"filter": "StandardScale"}, {"filter": "LogReg", "params": {"C": 2.0}}]
    }
    assert out["valid"]["accuracy"] > 0.85
    # Regression: the counts cover the fit pass too (they used to count validation only).
    assert out["cache_hits"] == 0 and out["cache_misses"] >= 4
    again = runner.invoke(
        app, ["project", "spec", "StandardScale >> LogReg(C=2)", "-p", str(root), "--run", "--json"]
    )
    rerun = json.loads(again.output)
    assert rerun["cache_misses"] == 0 and rerun["cache_hits"] == out["cache_misses"]

    bad = runner.invoke(app, ["project", "spec", "os.system('x')", "-p", str(root)])
    assert bad.exit_code == 1 and "attribute access is not allowed" in bad.output


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any attempt to open a network connection fails the test (and downloads have nowhere
    to come from: scikit-learn's data home is an empty folder)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    empty = tmp_path / "sklearn-data"
    empty.mkdir()
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(empty))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    assert list(empty.iterdir()) == []  # nothing was fetched into it either


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_cli_init_then_run_at_once_offline(tmp_path, no_network, example):
    root = tmp_path / example
    made = runner.invoke(app, ["init", str(root), "--example", example])
    assert made.exit_code == 0, made.output
    ran = runner.invoke(
        app,
        ["project", "spec", "StandardScale >> LogReg", "-p", str(root), "--run", "--json"],
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["valid"]["accuracy"] > 0.85


def test_cli_reports_broken_projects(make_project):
    root = make_project('[metric]\nname = "accuracy"\ndirection = "maximise"\n')
    result = runner.invoke(app, ["project", "show", "-p", str(root)])
    assert result.exit_code == 1
    assert "[metric] direction: expected 'maximize' or 'minimize'" in result.output
    (root / "soma.toml").write_text('[metric]\nname = "accuracy"\n', encoding="utf-8")
    (root / "filters" / "bad.py").write_text("def (:\n", encoding="utf-8")
    listed = runner.invoke(app, ["project", "filters", "-p", str(root)])
    assert listed.exit_code == 1 and "filters/bad.py:1: SyntaxError" in listed.output
