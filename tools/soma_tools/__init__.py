"""The one tool layer: Soma's 13 research tools as plain Python functions.

Every tool is ``fn(ctx: ToolContext, inp: <Name>Input) -> <Name>Output`` (``run_pipeline`` and
``run_study`` also take ``progress=callback``). Inputs and outputs are pydantic models; every
output has ``render()``, a readable Markdown text. Anticipated failures raise
:class:`ToolError` (``field`` names the bad argument); a pipeline whose code raises raises
:class:`PipelineFailedError` after recording the failed experiment.

The MCP server publishes exactly :data:`TOOLS`; the agent calls the same functions::

    import soma_tools as tools
    ctx = tools.ToolContext("my-research")
    out = tools.run_pipeline(ctx, tools.RunPipelineInput(spec="StandardScale() >> LogReg()"))
    out.experiment_id, out.value
    # or, from a dict of arguments (validated like the server does):
    out = tools.TOOLS["query_knowledge_base"].invoke(ctx, {"text": "PCA", "k": 5})
"""

from __future__ import annotations

from soma_tools._base import ProgressCallback, ToolInput, ToolOutput
from soma_tools._context import ToolContext
from soma_tools._errors import PipelineFailedError, ToolError
from soma_tools._filter_tools import list_filters, read_filter_source, write_filter_source
from soma_tools._kb_tools import (
    create_research_line,
    generate_report,
    get_change_points,
    get_trajectory,
    list_research_lines,
    promising_lines,
    query_knowledge_base,
)
from soma_tools._models_filters import (
    FilterEntry,
    FilterParam,
    ListFiltersInput,
    ListFiltersOutput,
    ReadFilterSourceInput,
    ReadFilterSourceOutput,
    WriteFilterSourceInput,
    WriteFilterSourceOutput,
)
from soma_tools._models_kb import (
    ChangePointRow,
    CreateResearchLineInput,
    CreateResearchLineOutput,
    ExperimentHit,
    GenerateReportInput,
    GenerateReportOutput,
    GetChangePointsInput,
    GetChangePointsOutput,
    GetTrajectoryInput,
    GetTrajectoryOutput,
    LineRow,
    ListResearchLinesInput,
    ListResearchLinesOutput,
    PromisingLinesInput,
    PromisingLinesOutput,
    QueryKnowledgeBaseInput,
    QueryKnowledgeBaseOutput,
    TrajectoryRow,
)
from soma_tools._models_runs import (
    NodeRun,
    RecordExperimentInput,
    RecordExperimentOutput,
    RunPipelineInput,
    RunPipelineOutput,
    RunStudyInput,
    RunStudyOutput,
    SpaceSpec,
    TrialRow,
)
from soma_tools._pipeline_tool import run_pipeline
from soma_tools._record_tool import record_experiment
from soma_tools._registry import TOOLS, ToolSpec
from soma_tools._study_tool import run_study

__all__ = [
    "TOOLS",
    "ChangePointRow",
    "CreateResearchLineInput",
    "CreateResearchLineOutput",
    "ExperimentHit",
    "FilterEntry",
    "FilterParam",
    "GenerateReportInput",
    "GenerateReportOutput",
    "GetChangePointsInput",
    "GetChangePointsOutput",
    "GetTrajectoryInput",
    "GetTrajectoryOutput",
    "LineRow",
    "ListFiltersInput",
    "ListFiltersOutput",
    "ListResearchLinesInput",
    "ListResearchLinesOutput",
    "NodeRun",
    "PipelineFailedError",
    "ProgressCallback",
    "PromisingLinesInput",
    "PromisingLinesOutput",
    "QueryKnowledgeBaseInput",
    "QueryKnowledgeBaseOutput",
    "ReadFilterSourceInput",
    "ReadFilterSourceOutput",
    "RecordExperimentInput",
    "RecordExperimentOutput",
    "RunPipelineInput",
    "RunPipelineOutput",
    "RunStudyInput",
    "RunStudyOutput",
    "SpaceSpec",
    "ToolContext",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "ToolSpec",
    "TrajectoryRow",
    "TrialRow",
    "WriteFilterSourceInput",
    "WriteFilterSourceOutput",
    "create_research_line",
    "generate_report",
    "get_change_points",
    "get_trajectory",
    "list_filters",
    "list_research_lines",
    "promising_lines",
    "query_knowledge_base",
    "read_filter_source",
    "record_experiment",
    "run_pipeline",
    "run_study",
    "write_filter_source",
]
