"""Inputs the schemas allowed used to fail "unexpectedly" or echo themselves (issue 18, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

import soma_tools as T
from soma.project import init_project


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> T.ToolContext:
    root = init_project(tmp_path_factory.mktemp("bounds") / "digits", example="digits")
    return T.ToolContext(Path(root), embedder="hashing")


def test_regression_an_over_long_file_name_is_refused_without_the_server_path(
    ctx: T.ToolContext,
) -> None:
    # Used to be an OSError quoting the server's absolute path.
    name = "a" * 300 + ".py"
    for tool, args in (
        ("write_filter_source", {"path": name, "content": "X = 1\n"}),
        ("read_filter_source", {"file": name}),
    ):
        with pytest.raises(T.ToolError) as err:
            T.TOOLS[tool].invoke(ctx, args)
        text = str(err.value)
        assert "255" in text and str(ctx.project.root) not in text
    with pytest.raises(T.ToolError, match="at most 1024"):
        T.TOOLS["write_filter_source"].invoke(ctx, {"path": "a/" * 600 + "b.py", "content": ""})


def test_regression_errors_quote_a_short_prefix_of_a_huge_value(ctx: T.ToolContext) -> None:
    # A 1 MB line name used to come back whole in the error (a 2 MB message).
    huge = "x" * 1_000_000
    for tool in ("get_trajectory", "get_change_points", "generate_report"):
        with pytest.raises(T.ToolError) as err:
            T.TOOLS[tool].invoke(ctx, {"research_line": huge})
        assert len(str(err.value)) < 2000
        assert "1,000,000 characters" in str(err.value)


def test_regression_a_blank_name_is_refused_clearly(ctx: T.ToolContext) -> None:
    # name=" " used to fail inside the knowledge base with a raw pydantic dump.
    for tool in ("run_pipeline", "run_study"):
        with pytest.raises(T.ToolError, match="name: must not be blank"):
            T.TOOLS[tool].invoke(ctx, {"spec": "StandardScale() >> LogReg()", "name": " "})


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("run_study", {"spec": "StandardScale() >> LogReg()", "seed": -1}),
        ("run_study", {"spec": "StandardScale() >> LogReg()", "seed": 2**32}),
        ("run_pipeline", {"spec": "StandardScale() >> LogReg()", "seed": 2**32}),
        ("record_experiment", {"metrics": {"accuracy": 0.5}, "seed": 2**63}),
        ("run_study", {"spec": "StandardScale() >> LogReg()", "n_trials": True}),
        ("promising_lines", {"k": "3"}),
    ],
)
def test_regression_seeds_have_their_real_bounds_and_numbers_are_strict(
    ctx: T.ToolContext, tool: str, args: dict[str, object]
) -> None:
    # Seeds past 32 bits (numpy) or int64 (SQLite) failed "unexpectedly"; n_trials=true ran
    # one trial and k="3" three lines (lax coercion).
    field = next(k for k in args if k != "spec" and k != "metrics")
    with pytest.raises(T.ToolError) as err:
        T.TOOLS[tool].invoke(ctx, args)
    assert f"{field}:" in str(err.value) and "unexpectedly" not in str(err.value)


def test_regression_an_unknown_line_lists_a_bounded_number_of_known_ones(
    ctx: T.ToolContext,
) -> None:
    for i in range(30):
        T.TOOLS["create_research_line"].invoke(ctx, {"name": f"line-{i:02d}"})
    with pytest.raises(T.ToolError) as err:
        T.TOOLS["get_trajectory"].invoke(ctx, {"research_line": "nope"})
    assert "and 10 more" in str(err.value) or "more (list_research_lines" in str(err.value)
    assert "'line-00'" in str(err.value) and "'line-29'" not in str(err.value)


def test_regression_a_blank_tag_is_refused_at_the_boundary(ctx: T.ToolContext) -> None:
    # The schema took tags: [""] and the knowledge base then refused it: "run_pipeline failed
    # unexpectedly: ValidationError ... tags must be non-empty strings" (found by fuzz_mcp).
    for tool, args in (
        ("run_pipeline", {"spec": "StandardScale() >> LogReg()", "tags": ["ok", " "]}),
        ("record_experiment", {"name": "x", "metrics": {"accuracy": 0.5}, "tags": [""]}),
    ):
        with pytest.raises(T.ToolError) as err:
            T.TOOLS[tool].invoke(ctx, args)
        assert "tags" in str(err.value) and "unexpectedly" not in str(err.value)
