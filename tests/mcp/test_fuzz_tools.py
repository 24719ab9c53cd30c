"""Property-based fuzz of the 13 tools' inputs, generated from their JSON schemas (issue 18).

Every call either succeeds or raises ToolError / PipelineFailedError with a short message:
never another exception, never a message that echoes a huge value. Arguments that break the
schema in one field are refused with a ToolError naming that field, never run.
``tools/bench/fuzz_mcp.py`` runs the same properties over the MCP protocol for 10,000 calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from schema_fuzz import invalid_arguments, valid_arguments, wrong_fields

import soma_tools as T
from soma.project import init_project

MAX_ERROR_CHARS = 2000
VALID = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    database=None,
    suppress_health_check=list(HealthCheck),
)
INVALID = settings(VALID, max_examples=4)
CASES = [
    (name, field)
    for name in sorted(T.TOOLS)
    for field in wrong_fields(T.TOOLS[name].input_schema())
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> T.ToolContext:
    root = init_project(tmp_path_factory.mktemp("fuzz") / "digits", example="digits")
    return T.ToolContext(Path(root), embedder="hashing")


def _call(ctx: T.ToolContext, name: str, args: dict[str, Any]) -> Exception | None:
    try:
        T.TOOLS[name].invoke(ctx, args)
    except (T.ToolError, T.PipelineFailedError) as exc:
        return exc
    return None


@pytest.mark.parametrize("name", sorted(T.TOOLS))
def test_fuzz_valid_arguments_never_fail_unexpectedly(ctx: T.ToolContext, name: str) -> None:
    @VALID
    @given(valid_arguments(T.TOOLS[name].input_schema()))
    def check(args: dict[str, Any]) -> None:
        error = _call(ctx, name, args)
        if error is not None:
            assert len(str(error)) <= MAX_ERROR_CHARS, str(error)[:300]
            assert "failed unexpectedly" not in str(error)

    check()


@pytest.mark.parametrize(("name", "field"), CASES)
def test_fuzz_invalid_arguments_are_refused_naming_the_field(
    ctx: T.ToolContext, name: str, field: str
) -> None:
    @INVALID
    @given(invalid_arguments(T.TOOLS[name].input_schema(), field))
    def check(args: dict[str, Any]) -> None:
        error = _call(ctx, name, args)
        assert isinstance(error, T.ToolError), f"{name} accepted {field}={args[field]!r}"[:300]
        assert field in str(error), str(error)[:300]
        assert len(str(error)) <= MAX_ERROR_CHARS, str(error)[:300]

    check()
