"""Research projects: ``soma.toml``, filter discovery, pipeline specs and ``soma init``.

A project is a folder::

    my-research/
      soma.toml      # name, data loader, metric(s) and direction, paths, agent settings
      filters/       # Python modules defining Filter subclasses
      data.py        # load() -> {"train": (x, y), "valid": (x, y)[, "test": (x, y)]}
      .soma/         # Soma's state: kb.sqlite, cache/, optuna.sqlite

>>> from soma.project import init_project, load_project
>>> import tempfile
>>> project = load_project(init_project(tempfile.mkdtemp(), example="wine"))
>>> project.metric.name, project.metric.direction
('accuracy', 'maximize')
>>> catalog = project.discover_filters()
>>> sorted(catalog.filters)[:4], catalog.errors
(['KNN', 'LogReg', 'MinMaxScale', 'PCA'], {})
>>> spec_to_string(project.parse_spec('{"chain": ["StandardScale", "LogReg(C=0.5)"]}'))
'StandardScale() >> LogReg(C=0.5)'
"""

from __future__ import annotations

from soma.project._config import AgentConfig, MetricConfig, PathsConfig, ProjectConfig
from soma.project._data import Splits
from soma.project._discover import FilterCatalog, FilterInfo
from soma.project._init import EXAMPLES, init_project
from soma.project._metrics import BUILTIN_METRICS, MetricSpec
from soma.project._paths import ProjectPaths, project_paths
from soma.project._project import Project, load_project
from soma.project._spec import parse_spec
from soma.project._spec_render import spec_to_json, spec_to_string

__all__ = [
    "BUILTIN_METRICS",
    "EXAMPLES",
    "AgentConfig",
    "FilterCatalog",
    "FilterInfo",
    "MetricConfig",
    "MetricSpec",
    "PathsConfig",
    "Project",
    "ProjectConfig",
    "ProjectPaths",
    "Splits",
    "init_project",
    "load_project",
    "parse_spec",
    "project_paths",
    "spec_to_json",
    "spec_to_string",
]
