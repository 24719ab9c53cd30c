"""Load a pipeline file: plain Python that defines a pipeline, its data and (optionally) a metric.

A pipeline file defines

- ``pipeline`` (or another name given as ``FILE.py:NAME``): a :class:`~soma.Graph`, an
  expression such as ``Scale() >> Ridge()``, or a zero-argument callable returning either;
- ``data()``: returns ``(x_train, y_train, x_valid, y_valid)``, or ``(x, y)`` when there
  is no validation split (forward then runs on the training data);
- optionally ``metric(y_true, y_pred) -> float`` and ``direction = "maximize"`` or
  ``"minimize"`` (default ``"maximize"``).

``soma run``, ``soma study run`` and ``soma pbt run`` read files through
:func:`load_pipeline_file`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from soma._expr import Chain, Fork
from soma.cache import Cache
from soma.errors import ProjectError, ValidationError
from soma.experiments import Splits
from soma.filter import Filter
from soma.graph import Graph
from soma.vocabulary import DIRECTIONS, Direction

__all__ = ["PipelineFile", "Splits", "load_pipeline_file", "split_ref"]


@dataclass(frozen=True)
class PipelineFile:
    """What a pipeline file defines. ``graph_factory(cache=..., max_workers=...)`` builds a
    fresh Graph each call; ``data`` is the file's own function (see :meth:`splits`)."""

    graph_factory: Callable[..., Graph]
    data: Callable[[], Any]
    metric: Callable[[Any, Any], float] | None
    direction: Direction
    path: Path
    name: str
    module: ModuleType

    def splits(self) -> Splits:
        """Call ``data()`` and check its shape: 4 values, or 2 (no validation split, then
        ``has_validation`` is False and the training data is scored), or a ``Splits`` (a
        project's own, ``load_project(...).load_data()``: the same data fingerprint)."""
        try:
            result = self.data()
        except Exception as exc:
            raise ProjectError(f"{self.path}: data() raised {type(exc).__name__}: {exc}") from exc
        if isinstance(result, Splits):
            return result
        if not isinstance(result, tuple | list) or len(result) not in (2, 4):
            got = f"a {len(result)}-tuple" if isinstance(result, tuple | list) else repr(result)
            raise ProjectError(
                f"{self.path}: data() must return (x_train, y_train, x_valid, y_valid) "
                f"or (x, y), got {got}"
            )
        return Splits.from_arrays(*result)

    def score(self, y_true: Any, y_pred: Any) -> float | None:
        """The metric's value, or None when the file defines no metric."""
        if self.metric is None:
            return None
        try:
            return float(self.metric(y_true, y_pred))
        except Exception as exc:
            raise ProjectError(f"{self.path}: metric() raised {type(exc).__name__}: {exc}") from exc


def split_ref(ref: str, default_name: str = "pipeline") -> tuple[Path, str]:
    """``"dir/file.py:NAME"`` -> (path, NAME); the name defaults to ``pipeline``."""
    text = str(ref)
    head, sep, tail = text.rpartition(":")
    if sep and tail.isidentifier() and head:
        return Path(head), tail
    return Path(text), default_name


def load_pipeline_file(ref: str, *, default_name: str = "pipeline") -> PipelineFile:
    """Import the file in ``ref`` (``FILE.py[:NAME]``) and check what it defines."""
    path, name = split_ref(ref, default_name)
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ProjectError(f"pipeline file not found: {path}")
    if path.suffix != ".py":
        raise ProjectError(f"pipeline file must be a .py file, got {path.name}")
    module = _import_file(path)
    if not hasattr(module, name):
        found = sorted(
            attr
            for attr, value in vars(module).items()
            if not attr.startswith("_") and isinstance(value, Graph | Chain | Fork | Filter)
        )
        hint = f" (pipelines found: {', '.join(found)})" if found else ""
        raise ProjectError(f"{path.name}: no {name!r} defined{hint}; use FILE.py:NAME")
    target = getattr(module, name)
    data = getattr(module, "data", None)
    if not callable(data):
        raise ProjectError(
            f"{path.name}: define data() returning (x_train, y_train, x_valid, y_valid) or (x, y)"
        )
    metric = getattr(module, "metric", None)
    if metric is not None and not callable(metric):
        raise ProjectError(f"{path.name}: metric must be a function metric(y_true, y_pred)")
    direction = getattr(module, "direction", Direction.MAXIMIZE)
    if direction not in DIRECTIONS:
        raise ValidationError(
            "direction", f"{path.name}: expected 'maximize' or 'minimize', got {direction!r}"
        )
    return PipelineFile(
        graph_factory=_graph_factory(target, f"{path.name}:{name}"),
        data=data,
        metric=metric,
        direction=Direction(direction),
        path=path,
        name=name,
        module=module,
    )


_KEEP: Any = object()


def _graph_factory(target: Any, where: str) -> Callable[..., Graph]:
    def build(*, cache: Cache | None = _KEEP, max_workers: int | None = None) -> Graph:
        """A fresh graph; ``cache`` replaces the file's own (None: no cache)."""
        value = target
        if callable(value) and not isinstance(value, Graph | Chain | Fork | Filter):
            try:
                value = value()
            except Exception as exc:
                raise ProjectError(
                    f"{where}: calling it raised {type(exc).__name__}: {exc}"
                ) from exc
        if isinstance(value, Graph):
            # A fresh copy so runs with different caches never share fitted states.
            copy = value._copy()
            if cache is not _KEEP:
                copy.cache = cache
            copy.max_workers = max_workers or value.max_workers
            return copy
        if isinstance(value, Chain | Fork | Filter):
            return Graph.somatize(
                value, cache=None if cache is _KEEP else cache, max_workers=max_workers
            )
        raise ProjectError(
            f"{where}: expected a Graph, an expression like A() >> B(), or a function "
            f"returning one; got {type(value).__name__}"
        )

    return build


def _import_file(path: Path) -> ModuleType:
    # A stable, unique module name per file so classes pickle and their source is found
    # (inspect.getsource looks the module up in sys.modules).
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    module_name = f"soma_pipeline_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ProjectError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    if str(path.parent) not in sys.path:  # like running the file: its siblings import
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ProjectError(f"{path.name}: importing it raised {type(exc).__name__}: {exc}") from exc
    return module
