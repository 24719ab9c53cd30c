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
