"""soma.toml validation: every bad key, type, value or file gets a message naming it."""

from __future__ import annotations

import pytest

from soma import ProjectError
from soma.project import load_project


def error_of(root) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(root)
    return str(info.value)


def test_minimal_config_takes_the_documented_defaults(make_project):
    root = make_project(name="my-study")
    project = load_project(root)
    assert project.name == "my-study"  # default: the folder's name
    assert project.filters_dir == root / "filters"
    assert project.data_path == root / "data.py"
    assert project.kb_path == root / ".soma" / "kb.sqlite"
    assert project.cache_dir == root / ".soma" / "cache"
    assert project.optuna_path == root / ".soma" / "optuna.sqlite"
    assert project.optuna_url == f"sqlite:///{root / '.soma' / 'optuna.sqlite'}"
    agent = project.config.agent
    assert (agent.planner, agent.max_experiments, agent.seed, agent.approve) == (
        "builtin",
        20,
        0,
        False,
    )
    assert project.metric.name == "accuracy" and project.metric.direction == "maximize"


def test_full_config_is_read(make_project):
    root = make_project(
        """
        name = "exp"
        description = "d"
        filters = "src/filters"
        data = "loaders/data.py:splits"
        [[metric]]
        name = "mse"
        [[metric]]
        name = "r2"
        direction = "maximize"
        [paths]
        kb = "state/kb.sqlite"
        [agent]
        planner = "anthropic"
        max_experiments = 5
        budget_usd = 2
        seed = 7
        approve = true
        """,
        files={
            "src/filters/a.py": "",
            "loaders/data.py": "def splits():\n    return {}\n",
        },
    )
    project = load_project(root)
    assert project.name == "exp"
    assert project.filters_dir == root / "src" / "filters"
    assert project.data_path == root / "loaders" / "data.py"
    assert project.data_function == "splits"
    assert project.kb_path == root / "state" / "kb.sqlite"
    assert [(m.name, m.direction) for m in project.metrics] == [
        ("mse", "minimize"),
        ("r2", "maximize"),
    ]
    assert project.config.agent.budget_usd == 2.0  # an int is fine for a float
    assert project.config.agent.approve is True
    assert project.metric.better(0.1, 0.2)


def test_unknown_top_level_key_is_named_with_a_suggestion(make_project):
    message = error_of(make_project('filtres = "x"\n[metric]\nname = "accuracy"\n'))
    assert "soma.toml: unknown key 'filtres' (did you mean 'filters'?)" in message


def test_unknown_key_in_a_section(make_project):
    toml = '[metric]\nname = "accuracy"\n[agent]\nmax_experiment = 3\n'
    message = error_of(make_project(toml))
    assert "soma.toml: [agent] unknown key 'max_experiment' (did you mean 'max_experiments'?)" in (
        message
    )


def test_wrong_type_names_key_and_expected_type(make_project):
    message = error_of(
        make_project('[metric]\nname = "accuracy"\n[agent]\nmax_experiments = "10"\n')
    )
    assert message == ("soma.toml: [agent] max_experiments: expected a valid integer, got '10'")


def test_bad_direction_message(make_project):
    message = error_of(make_project('[metric]\nname = "accuracy"\ndirection = "maximise"\n'))
    assert message == (
        "soma.toml: [metric] direction: expected 'maximize' or 'minimize', got 'maximise'"
    )


def test_bad_direction_in_second_metric_of_an_array(make_project):
    toml = '[[metric]]\nname = "accuracy"\n[[metric]]\nname = "mae"\ndirection = "down"\n'
    message = error_of(make_project(toml))
    assert "[[metric]] #2 direction: expected 'maximize' or 'minimize', got 'down'" in message


def test_builtin_direction_contradiction(make_project):
    message = error_of(make_project('[metric]\nname = "mse"\ndirection = "maximize"\n'))
    assert "[metric] direction: 'mse' is better when lower; expected 'minimize'" in message


def test_unknown_metric_name(make_project):
    message = error_of(make_project('[metric]\nname = "acuracy"\n'))
    assert "[metric] name: unknown metric 'acuracy'" in message
    assert "accuracy" in message and "FILE.py:FUNCTION" in message


def test_missing_metric_table(make_project):
    message = error_of(make_project('name = "x"\n'))
    assert "missing the [metric] table" in message


def test_missing_required_key_in_section(make_project):
    message = error_of(make_project('[metric]\ndirection = "maximize"\n'))
    assert message == "soma.toml: [metric] name: missing required key"


def test_out_of_range_value(make_project):
    message = error_of(make_project('[metric]\nname = "accuracy"\n[agent]\nmax_experiments = 0\n'))
    assert "[agent] max_experiments: expected greater than or equal to 1, got 0" in message


def test_section_of_the_wrong_kind(make_project):
    message = error_of(make_project('agent = 3\n[metric]\nname = "accuracy"\n'))
    assert "[agent] expected a table, got 3" in message


def test_metric_shorthand_string(make_project):
    project = load_project(make_project('metric = "balanced_accuracy"\n'))
    assert project.metric.name == "balanced_accuracy"


def test_invalid_toml_syntax(make_project):
    message = error_of(make_project("[metric\nname = 1\n"))
    assert message.startswith("soma.toml: invalid TOML:")


def test_missing_soma_toml(tmp_path):
    assert "no soma.toml in" in error_of(tmp_path)
    assert "does not exist" in error_of(tmp_path / "nope")


def test_missing_data_file(make_project):
    root = make_project('data = "loader.py:load"\n[metric]\nname = "accuracy"\n')
    assert error_of(root) == f"soma.toml: data: file 'loader.py' not found in {root}"


def test_malformed_data_reference(make_project):
    message = error_of(make_project('data = "data.py"\n[metric]\nname = "accuracy"\n'))
    assert "soma.toml: data: expected 'FILE.py:FUNCTION'" in message


def test_missing_filters_folder(make_project):
    root = make_project('filters = "plugins"\n[metric]\nname = "accuracy"\n')
    assert error_of(root) == f"soma.toml: filters: folder 'plugins' not found in {root}"


@pytest.mark.parametrize("value", ["../elsewhere.sqlite", "/tmp/kb.sqlite", "a/../../b"])
def test_paths_must_stay_inside_the_project(make_project, value):
    toml = f'[metric]\nname = "accuracy"\n[paths]\nkb = "{value}"\n'
    message = error_of(make_project(toml))
    assert "soma.toml: [paths] kb: expected a path inside the project" in message
    assert repr(value) in message


def test_custom_metric_from_a_project_file(make_project):
    root = make_project(
        '[metric]\nname = "scoring.py:hits"\ndirection = "maximize"\n',
        files={"scoring.py": "def hits(y_true, y_pred):\n    return float(sum(y_true))\n"},
    )
    project = load_project(root)
    assert (project.metric.name, project.metric.source) == ("hits", "scoring.py:hits")
    assert project.metric([1, 2, 3], [0, 0, 0]) == 6.0


def test_custom_metric_needs_direction(make_project):
    root = make_project('[metric]\nname = "scoring.py:hits"\n', files={"scoring.py": ""})
    assert "[metric] direction: required for the custom metric" in error_of(root)


def test_custom_metric_file_or_function_missing(make_project):
    toml = '[metric]\nname = "scoring.py:hits"\ndirection = "minimize"\n'
    assert "file 'scoring.py' not found" in error_of(make_project(toml, name="a"))
    root = make_project(toml, files={"scoring.py": "x = 1\n"}, name="b")
    assert "scoring.py defines no function 'hits'" in error_of(root)
    root = make_project(toml, files={"scoring.py": "import nope_not_here\n"}, name="c")
    assert "scoring.py:1: ModuleNotFoundError" in error_of(root)


@pytest.mark.parametrize(
    ("name", "y_true", "y_pred", "expected"),
    [
        ("accuracy", [0, 1, 1, 0], [0, 1, 0, 0], 0.75),
        ("balanced_accuracy", [0, 0, 0, 1], [0, 0, 0, 0], 0.5),
        ("f1_macro", [0, 1], [0, 1], 1.0),
        ("mse", [1.0, 2.0], [2.0, 4.0], 2.5),
        ("rmse", [0.0, 0.0], [3.0, 4.0], 12.5**0.5),
        ("mae", [1.0, 2.0], [2.0, 4.0], 1.5),
        ("r2", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0),
    ],
)
def test_builtin_metrics_compute_their_values(make_project, name, y_true, y_pred, expected):
    project = load_project(make_project(f'[metric]\nname = "{name}"\n', name=name))
    assert project.metric(y_true, y_pred) == pytest.approx(expected)
    assert project.score(y_true, y_pred) == {name: pytest.approx(expected)}


@pytest.mark.parametrize("key", ["kb", "cache", "optuna"])
@pytest.mark.parametrize("value", ["", ".", "./", "state/.."])
def test_regression_state_path_may_not_be_the_project_folder(make_project, key, value):
    # `cache = ""` used to be accepted and pointed the cache at the project root itself.
    root = make_project(f'[metric]\nname = "accuracy"\n[paths]\n{key} = "{value}"\n')
    message = error_of(root)
    assert message.startswith(f"soma.toml: [paths] {key}: ")
    assert repr(value) in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", "expected a [metric] table or [[metric]] tables"),
        ("[]", "expected a [metric] table or [[metric]] tables"),
        ("true", "expected a [metric] table or [[metric]] tables"),
        ('""', "name: String should have at least 1 character"),
    ],
)
def test_metric_of_the_wrong_kind_says_what_is_expected(make_project, value, expected):
    message = error_of(make_project(f"metric = {value}\n"))
    assert message.startswith("soma.toml: [metric] ") and expected in message
