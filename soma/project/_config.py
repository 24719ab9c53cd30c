"""``soma.toml``: the pydantic schema and its translation into readable errors.

A project file looks like this (every key but ``[metric]`` has a default)::

    name = "digits"                  # default: the project folder's name
    description = "Which pipeline classifies handwritten digits best?"
    filters = "filters"              # folder of Filter modules
    data = "data.py:load"            # FILE.py:FUNCTION returning the splits, or a data
                                     # store URL such as "zarr:///data/digits#v1" (soma.data)
    store = "s3://bucket/prefix"     # optional: the project's data store (soma store ...)

    [[metric]]                       # primary metric first; [metric] for a single one
    name = "accuracy"                # built-in name, or "metrics.py:function"
    direction = "maximize"           # optional for built-ins (they know theirs)

    [paths]                          # inside the project; defaults shown
    kb = ".soma/kb.sqlite"
    cache = ".soma/cache"
    optuna = ".soma/optuna.sqlite"

    [agent]
    planner = "builtin"
    max_experiments = 20
    budget_usd = 1.0
    seed = 0
    approve = false

    [cluster]                        # optional: run experiments on a Soma cluster
    address = "10.0.0.5:6379"        # a coordinator (token from $SOMA_TOKEN, never here)
    n_jobs = 4                       # trials in flight per study (default: the workers' slots)
"""

from __future__ import annotations

import difflib
import posixpath
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, Strict

from soma.errors import ProjectError
from soma.vocabulary import Direction

__all__ = [
    "CONFIG_FILE",
    "AgentConfig",
    "ClusterConfig",
    "KbConfig",
    "MetricConfig",
    "PathsConfig",
    "ProjectConfig",
    "parse_config",
    "parse_ref",
    "project_relative",
]

CONFIG_FILE = "soma.toml"

# The core's Direction, accepted as its string although the config models are strict.
DirectionField = Annotated[Direction, Strict(False)]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class MetricConfig(BaseModel):
    """One ``[[metric]]`` entry: a built-in metric name or ``"FILE.py:FUNCTION"``."""

    model_config = _STRICT

    name: str = Field(min_length=1, description="built-in metric name or FILE.py:FUNCTION")
    direction: DirectionField | None = Field(
        default=None, description="'maximize' or 'minimize'; built-ins know theirs"
    )


class PathsConfig(BaseModel):
    """Where Soma keeps its state; relative to the project root and inside it."""

    model_config = _STRICT

    kb: str = Field(default=".soma/kb.sqlite", min_length=1)
    cache: str = Field(default=".soma/cache", min_length=1)
    optuna: str = Field(default=".soma/optuna.sqlite", min_length=1)


class KbConfig(BaseModel):
    """``[kb]``: the knowledge base's vector index beside its SQLite records."""

    model_config = _STRICT

    # "chronos" (ChronosVector's temporal index) needs Python 3.12 and soma-research[chronos].
    backend: Literal["faiss", "chronos"] = "faiss"


class AgentConfig(BaseModel):
    """Settings of ``soma agent run``."""

    model_config = _STRICT

    planner: str = Field(default="builtin", min_length=1)
    max_experiments: int = Field(default=20, ge=1)
    budget_usd: float = Field(default=1.0, ge=0.0)
    seed: int = 0
    approve: bool = False


_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:[0-9]{1,5}$")


class ClusterConfig(BaseModel):
    """``[cluster]``: the coordinator that ``soma agent run`` and the tools send work to."""

    model_config = _STRICT

    address: str | None = Field(default=None, description="the coordinator's HOST:PORT")
    n_jobs: int | None = Field(default=None, ge=1)

    @pydantic.field_validator("address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and not _HOST_PORT.match(value):
            raise ValueError("expected HOST:PORT of a coordinator (e.g. '10.0.0.5:6379')")
        return value


class LimitsConfig(BaseModel):
    """``[limits]``: how far user code may go in one experiment (the tools enforce them by
    stopping the worker process it runs in; a call may override them)."""

    model_config = _STRICT

    timeout_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    memory_mb: int | None = Field(default=None, ge=64, le=2**24)
    #: How long importing the filters folder may take before the file being imported is
    #: reported as hanging (and never imported in the server).
    import_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    #: Worker processes user code runs in (calls beyond wait); 0 runs it in the calling
    #: process, without isolation or limits.
    workers: int = Field(default=2, ge=0, le=64)


class ProjectConfig(BaseModel):
    """The whole of ``soma.toml``, validated."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    description: str = ""
    filters: str = Field(default="filters", min_length=1)
    data: str = Field(default="data.py:load", min_length=1)
    store: str | None = Field(default=None, min_length=1)  # a data store URL (soma.data)
    metric: list[MetricConfig] = Field(min_length=1)
    paths: PathsConfig = PathsConfig()
    kb: KbConfig = KbConfig()
    agent: AgentConfig = AgentConfig()
    cluster: ClusterConfig = ClusterConfig()
    limits: LimitsConfig = LimitsConfig()


_SECTIONS = {
    "metric": MetricConfig,
    "paths": PathsConfig,
    "kb": KbConfig,
    "agent": AgentConfig,
    "cluster": ClusterConfig,
    "limits": LimitsConfig,
}
_REF = re.compile(r"^(?P<file>[^:]+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")


def parse_config(text: str, *, default_name: str, source: str = CONFIG_FILE) -> ProjectConfig:
    """Parse and validate the text of a ``soma.toml``; ProjectError names any bad key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{source}: invalid TOML: {exc}") from None
    raw.setdefault("name", default_name)
    if isinstance(raw.get("metric"), str):  # metric = "accuracy" as a shorthand
        raw["metric"] = {"name": raw["metric"]}
    metric_was_table = isinstance(raw.get("metric"), dict)
    if metric_was_table:
        raw["metric"] = [raw["metric"]]
    if "metric" not in raw:
        raise ProjectError(
            f"{source}: missing the [metric] table, e.g.\n"
            '[metric]\nname = "accuracy"\ndirection = "maximize"'
        )
    try:
        return ProjectConfig.model_validate(raw)
    except pydantic.ValidationError as exc:
        lines = [_describe_error(err, metric_was_table) for err in exc.errors()]
        raise ProjectError(f"{source}: " + f"\n{source}: ".join(lines)) from None


def _describe_error(err: Any, metric_was_table: bool) -> str:
    loc = list(err["loc"])
    kind = err["type"]
    where = _where(loc[:-1] if kind == "extra_forbidden" else loc, metric_was_table)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        known = sorted(model.model_fields)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}unknown key {key!r}{hint}; known keys: {', '.join(known)}"
    if kind == "missing":
        return f"{where.rstrip(': ')}: missing required key"
    if loc == ["metric"] and kind in ("list_type", "too_short"):
        # The list is our normalised form; the user wrote a table or an array of tables.
        return (
            f"{where}expected a [metric] table or [[metric]] tables with at least a name, "
            f"got {_short(err.get('input'))}"
        )
    message = str(err["msg"])
    message = message.removeprefix("Value error, ").replace("Input should be ", "expected ")
    message = re.sub(r"a valid dictionary or instance of \w+", "a table", message)
    return f"{where}{message}, got {_short(err.get('input'))}"


def _where(loc: list[Any], metric_was_table: bool) -> str:
    """``['metric', 0, 'direction']`` -> ``"[metric] direction: "``."""
    if not loc:
        return ""
    head, rest = str(loc[0]), loc[1:]
    if head not in _SECTIONS:
        return f"{head}: "
    if head == "metric" and rest and isinstance(rest[0], int):
        section = "[metric]" if metric_was_table else f"[[metric]] #{rest[0] + 1}"
        rest = rest[1:]
    else:
        section = f"[{head}]"
    field = ".".join(str(p) for p in rest)
    return f"{section} {field}: " if field else f"{section} "


def _model_at(loc: list[Any]) -> type[BaseModel]:
    names = [p for p in loc if isinstance(p, str)]
    return _SECTIONS.get(names[0], ProjectConfig) if names else ProjectConfig


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_ref(value: str, key: str) -> tuple[str, str]:
    """Split ``"data.py:load"`` into ``("data.py", "load")``; ProjectError naming ``key``."""
    match = _REF.match(value)
    if not match:
        raise ProjectError(
            f"{CONFIG_FILE}: {key}: expected 'FILE.py:FUNCTION' (e.g. 'data.py:load'), "
            f"got {value!r}"
        )
    return match["file"], match["func"]


def project_relative(root: Path, value: str, key: str, *, allow_root: bool = True) -> Path:
    """``root / value`` after checking that ``value`` stays inside the project.

    The check is lexical (no symlink resolution), so a ``.soma`` that is a symlink to a
    bigger disk still works, while ``/abs`` or ``../x`` are refused. ``allow_root=False``
    also refuses the project folder itself (``"."``, ``"a/.."``): a state file or cache
    there would land on top of the user's own files.
    """
    posix = value.replace("\\", "/")
    normal = posixpath.normpath(posix)
    if posixpath.isabs(posix) or Path(value).is_absolute() or normal.split("/")[0] == "..":
        raise ProjectError(
            f"{CONFIG_FILE}: {key}: expected a path inside the project (relative, "
            f"without leading '..'), got {value!r}"
        )
    if normal == "." and not allow_root:
        raise ProjectError(
            f"{CONFIG_FILE}: {key}: expected a path below the project folder "
            f"(e.g. '.soma/...'), not the folder itself, got {value!r}"
        )
    return root / normal
