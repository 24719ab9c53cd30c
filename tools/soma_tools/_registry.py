"""The registry of the 13 tools: name -> ToolSpec(fn, input_model, output_model, description).

The MCP server publishes exactly these; the agent calls them in-process through
:meth:`ToolSpec.invoke` (arguments as a dict, validated like the server validates them).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from soma_tools import _filter_tools, _kb_tools, _pipeline_tool, _record_tool, _study_tool
from soma_tools._base import ProgressCallback, ToolInput, ToolOutput
from soma_tools._context import ToolContext
from soma_tools._errors import ToolError, describe_validation_error
from soma_tools._schema import inline_schema

__all__ = ["TOOLS", "ToolSpec"]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: the function, its pydantic input/output models and its LLM-facing description.

    ``read_only``: the tool changes nothing (MCP annotation ``readOnlyHint``);
    ``progress``: the function accepts ``progress=`` and reports while it runs.
    """

    name: str
    fn: Callable[..., ToolOutput]
    input_model: type[ToolInput]
    output_model: type[ToolOutput]
    description: str
    read_only: bool = False
    progress: bool = False

    def parse(self, arguments: Mapping[str, Any] | ToolInput | None) -> ToolInput:
        """Validated input; ToolError naming every bad field otherwise.

        Object- or list-valued arguments sent as JSON text (some clients do) are decoded.
        """
        if isinstance(arguments, self.input_model):
            return arguments
        if isinstance(arguments, ToolInput):
            raise ToolError(
                f"{self.name} takes {self.input_model.__name__}, got {type(arguments).__name__}"
            )
        raw = dict(arguments or {})
        for key, value in raw.items():
            field = self.input_model.model_fields.get(key)
            if isinstance(value, str) and field is not None and field.annotation is not str:
                text = value.strip()
                if text[:1] in ("{", "[") and _wants_container(field.annotation):
                    # Not JSON: left as text, and validation says what was expected.
                    with contextlib.suppress(ValueError):
                        raw[key] = json.loads(text)
        try:
            return self.input_model.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise ToolError(describe_validation_error(self.name, exc)) from None

    def invoke(
        self,
        ctx: ToolContext,
        arguments: Mapping[str, Any] | ToolInput | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> ToolOutput:
        """Validate ``arguments`` and run the tool; returns its output model."""
        inp = self.parse(arguments)
        if self.progress:
            return self.fn(ctx, inp, progress=progress)
        return self.fn(ctx, inp)

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments (``$ref``s inlined)."""
        return _schema_of(self.input_model)

    def output_schema(self) -> dict[str, Any]:
        """JSON schema of the structured result (``$ref``s inlined)."""
        return _schema_of(self.output_model)


@functools.cache
def _schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return inline_schema(model.model_json_schema())


def _wants_container(annotation: Any) -> bool:
    text = str(annotation)
    return "dict" in text or "list" in text or "SpaceSpec" in text


def _spec(
    name: str, fn: Callable[..., ToolOutput], description: str, *, read_only: bool
) -> ToolSpec:
    hints = inspect.get_annotations(fn, eval_str=True)
    params = list(inspect.signature(fn).parameters)
    return ToolSpec(
        name=name,
        fn=fn,
        input_model=hints[params[1]],
        output_model=hints["return"],
        description=inspect.cleandoc(description),
        read_only=read_only,
        progress="progress" in params,
    )


_DESCRIPTIONS: dict[str, tuple[Callable[..., ToolOutput], bool, str]] = {
    "list_filters": (
        _filter_tools.list_filters,
        True,
        """List the filters (pipeline steps) this project defines: class name, file, parameters
        with defaults and search spaces, and the first docstring line. Use the names in pipeline
        specs for run_pipeline and run_study. Files that fail to import are listed under errors.""",
    ),
    "read_filter_source": (
        _filter_tools.read_filter_source,
        True,
        """Read the Python source of a filter: give `name` (a class from list_filters) to get
        its file and the class's line span, or `file` (a path inside the filters folder).""",
    ),
    "write_filter_source": (
        _filter_tools.write_filter_source,
        False,
        """Create or replace a .py file in the project's filters folder (only there: no
        absolute paths, no '..', no links leading out). The content must be valid Python; the
        previous version is backed up under .soma/backups/. Returns the diff and whether every
        filter file still imports (with per-file errors), and the filters found in the file.""",
    ),
    "run_pipeline": (
        _pipeline_tool.run_pipeline,
        False,
        """Run one experiment: build the pipeline from `spec`, fit it on the training split,
        score it on the validation split with the project's metrics, and record it in the
        knowledge base (intermediate results are cached, so reruns of shared prefixes are
        fast). Returns the experiment id, metrics, duration, cache hits and whether it is the
        line's new best. If user code raises, the result is an error naming the failing node
        with the end of its traceback, and the experiment is recorded as failed.""",
    ),
    "run_study": (
        _study_tool.run_study,
        False,
        """Tune a pipeline's hyperparameters with Optuna: `n_trials` trials (or until
        `timeout` seconds) over `space` (default: the search() spaces the filters declare).
        Every trial is recorded in the knowledge base. Reports progress while it runs and
        returns the best parameters and value and the trial counts by status.""",
    ),
    "record_experiment": (
        _record_tool.record_experiment,
        False,
        """Record an experiment that ran outside Soma (metrics, pipeline, hypothesis), or,
        with `id`, conclude an existing one: set its verdict (supported / refuted /
        inconclusive), notes and tags.""",
    ),
    "query_knowledge_base": (
        _kb_tools.query_knowledge_base,
        True,
        """Search past experiments by meaning (`text`, semantic search over hypotheses,
        pipelines and notes) and/or exact filters (line, tags, status, origin, time, field
        conditions). Check here before running something that may already have been tried.""",
    ),
    "get_trajectory": (
        _kb_tools.get_trajectory,
        True,
        """A research line's metric experiment after experiment: each value, the best so far,
        the improvements and the trend (improving / plateaued / declining).""",
    ),
    "get_change_points": (
        _kb_tools.get_change_points,
        True,
        """Where a research line's metric shifted level (change-point detection) and what
        changed in the experiments at that point.""",
    ),
    "list_research_lines": (
        _kb_tools.list_research_lines,
        True,
        """Every research line (a question pursued with one metric and direction) with its
        number of experiments, best value and trend.""",
    ),
    "promising_lines": (
        _kb_tools.promising_lines,
        True,
        """The research lines most worth another experiment, best first, with a score and
        the reason.""",
    ),
    "create_research_line": (
        _kb_tools.create_research_line,
        False,
        """Create a research line: a named question with a metric and direction (defaults:
        the project's primary metric). Experiments are then filed under it with
        `research_line`.""",
    ),
    "generate_report": (
        _kb_tools.generate_report,
        False,
        """Write a Markdown report of a research line (trajectory, best experiments, change
        points, failures) with a plot, under .soma/reports/. Returns the text and the paths.""",
    ),
}

TOOLS: dict[str, ToolSpec] = {
    name: _spec(name, fn, description, read_only=read_only)
    for name, (fn, read_only, description) in _DESCRIPTIONS.items()
}
