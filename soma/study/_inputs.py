"""Validation of what a study or PBT run is given: directions, metrics, data, storage, paths.

Shared by :mod:`soma.study` and :mod:`soma.pbt`. Every bad input is a ValidationError
naming the field and what was expected; nothing is created before validation passes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soma.errors import ValidationError
from soma.experiments._metrics import DIRECTIONS, MetricFailed, MetricSpec, as_objective_value
from soma.experiments._splits import Splits, splits_from_data
from soma.project._paths import ProjectPaths, project_paths
from soma.vocabulary import Direction

if TYPE_CHECKING:
    import optuna

    from soma.cache import Cache
    from soma.graph import Graph

__all__ = [
    "DIRECTIONS",
    "MetricDef",
    "MetricFailed",
    "ProjectPaths",
    "Splits",
    "as_objective_value",
    "check_count",
    "check_direction",
    "check_run_name",
    "check_seed",
    "resolve_cache",
    "resolve_data",
    "resolve_graph",
    "resolve_metrics",
    "resolve_project",
    "resolve_storage",
]


def check_direction(value: Any, field: str = "direction") -> Direction:
    return Direction.parse(value, field)


def check_count(value: Any, field: str, *, minimum: int = 1, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, f"expected an int >= {minimum}, got {value!r}")
    return value


def check_seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValidationError("seed", f"expected an int, got {value!r}")
    return value


def check_run_name(value: Any, kind: str) -> str:
    """The given name, or ``KIND-YYYYmmdd-HHMMSS-xxxx``."""
    if value is None:
        import secrets
        import time

        return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name", f"expected a non-empty string, got {value!r}")
    return value


# -- metrics -----------------------------------------------------------------------------


#: A study's objective: the one :class:`soma.experiments.MetricSpec` (``fn`` is None when
#: a user objective computes the value itself).
MetricDef = MetricSpec


def _builtin_metric(name: str) -> tuple[Callable[[Any, Any], float], Direction] | None:
    from soma.project import BUILTIN_METRICS, MetricConfig
    from soma.project._metrics import resolve_metric

    if name not in BUILTIN_METRICS:
        return None
    spec = resolve_metric(MetricConfig(name=name), Path.cwd(), 0)
    return spec.fn, spec.direction


def _metric_entries(metric: Any) -> list[tuple[str, Any]]:
    if isinstance(metric, Mapping):
        return [(str(k), v) for k, v in metric.items()]
    if isinstance(metric, list | tuple):
        return [(_metric_name(m, i), m) for i, m in enumerate(metric)]
    return [(_metric_name(metric, 0), metric)]


def _metric_name(metric: Any, index: int) -> str:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "name", None) or getattr(metric, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        return "metric" if index == 0 else f"metric_{index}"
    return name


def resolve_metrics(metric: Any, direction: Any, *, objective_mode: bool) -> list[MetricDef]:
    """Metrics with their directions.

    ``metric``: a built-in name (``"accuracy"``, ``"mse"``, ...), a callable
    ``(y_true, y_pred) -> float``, an object with ``name``/``direction``/``fn`` (a
    ``soma.project.MetricSpec``), or a list / dict of those for several objectives.
    ``direction``: None (each built-in's own; ``"maximize"`` for callables), a string,
    or a list with one direction per metric. With a user objective, ``metric`` only names
    the objective values.
    """
    directions: list[Any] | None
    if direction is None:
        directions = None
    elif isinstance(direction, str):
        directions = [check_direction(direction)]
    elif isinstance(direction, list | tuple) and direction:
        directions = [check_direction(d, f"direction[{i}]") for i, d in enumerate(direction)]
    else:
        raise ValidationError(
            "direction", f"expected 'maximize', 'minimize' or a list of them, got {direction!r}"
        )

    if objective_mode:
        if metric is None:
            count = len(directions) if directions else 1
            names = ["objective"] if count == 1 else [f"objective_{i}" for i in range(count)]
        elif isinstance(metric, str):
            names = [metric]
        elif isinstance(metric, list | tuple) and all(isinstance(m, str) for m in metric):
            names = list(metric)
        else:
            raise ValidationError(
                "metric",
                "with an objective, metric only names its values: expected a name or a list "
                f"of names, got {metric!r}",
            )
        directions = directions or [Direction.MAXIMIZE] * len(names)
        if len(directions) != len(names):
            raise ValidationError(
                "direction",
                f"expected {len(names)} direction(s), one per objective value, "
                f"got {len(directions)}",
            )
        _check_unique(names)
        return [MetricDef(n, d, None) for n, d in zip(names, directions, strict=True)]

    if metric is None:
        raise ValidationError("metric", "expected a metric (name or callable) or an objective")
    entries = _metric_entries(metric)
    if not entries:
        raise ValidationError("metric", "expected at least one metric")
    if directions is not None and len(directions) != len(entries):
        raise ValidationError(
            "direction",
            f"expected {len(entries)} direction(s), one per metric, got {len(directions)}",
        )
    result = []
    for i, (name, value) in enumerate(entries):
        field = "metric" if len(entries) == 1 else f"metric[{name!r}]"
        given = directions[i] if directions is not None else None
        fn, natural = _metric_callable(value, field)
        if natural is not None and given is not None and given != natural:
            raise ValidationError(
                "direction" if len(entries) == 1 else f"direction[{i}]",
                f"metric {name!r} is better when {'higher' if natural.sign > 0 else 'lower'}"
                f"; expected {natural!r}, got {given!r}",
            )
        result.append(MetricDef(name, given or natural or Direction.MAXIMIZE, fn))
    _check_unique([m.name for m in result])
    return result


def _metric_callable(
    value: Any, field: str
) -> tuple[Callable[[Any, Any], float], Direction | None]:
    if isinstance(value, str):
        found = _builtin_metric(value)
        if found is None:
            from soma.project import BUILTIN_METRICS

            known = ", ".join(BUILTIN_METRICS)
            raise ValidationError(
                field, f"unknown metric {value!r}; expected one of {known} or a callable"
            )
        return found
    spec_fn = getattr(value, "fn", None)
    spec_direction = getattr(value, "direction", None)
    if callable(spec_fn) and spec_direction in DIRECTIONS:
        return spec_fn, Direction(spec_direction)
    if callable(value):
        return value, None
    raise ValidationError(
        field, f"expected a metric name or a callable (y_true, y_pred) -> float, got {value!r}"
    )


def _check_unique(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ValidationError("metric", f"metric names must be unique, got {names}")


# -- data --------------------------------------------------------------------------------


def resolve_data(data: Any) -> Splits:
    """``(x_train, y_train, x_valid, y_valid)``, ``(x, y)``, ``{"train": (x, y), "valid":
    (x, y)}`` or a :class:`soma.experiments.Splits` (kept with its fingerprint)."""
    return splits_from_data(data)


# -- graphs ------------------------------------------------------------------------------


def resolve_graph(graph_or_factory: Any, cache: Any) -> Graph:
    """A Graph using ``cache``, from a Graph, an expression or a zero-argument factory."""
    from soma import Chain, Filter, Fork
    from soma.graph import Graph

    obj = graph_or_factory
    if not isinstance(obj, Graph | Filter | Chain | Fork) and callable(obj):
        try:
            required = [
                p
                for p in inspect.signature(obj).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            required = []
        if required:
            raise ValidationError(
                "graph",
                f"a graph factory takes no arguments; {obj!r} requires "
                f"{', '.join(p.name for p in required)}",
            )
        obj = obj()
    if isinstance(obj, Filter | Chain | Fork):
        return Graph.somatize(obj, cache=cache)
    if isinstance(obj, Graph):
        return rebuild_with_cache(obj, cache)
    raise ValidationError(
        "graph",
        "expected a Graph, an expression (A() >> B()) or a zero-argument callable returning "
        f"one, got {type(obj).__name__}",
    )


def rebuild_with_cache(graph: Graph, cache: Any) -> Graph:
    """A copy of ``graph`` (same nodes, edges and filters) that runs on ``cache``."""
    copy = graph.with_params({})
    copy.cache = cache
    return copy


def resolve_cache(cache: Any, paths: Any) -> Cache:
    from soma.cache import Cache

    if cache is None:
        return Cache(paths.cache_dir) if paths is not None else Cache()
    if not isinstance(cache, Cache):
        raise ValidationError("cache", f"expected a soma.Cache, got {type(cache).__name__}")
    return cache


# -- where things are kept --------------------------------------------------------------


def resolve_project(project: Any) -> ProjectPaths | None:
    """A ``soma.project.Project``, or a folder (``soma.toml`` read when present, else the
    ``.soma/`` defaults)."""
    if project is None:
        return None
    if all(hasattr(project, a) for a in ("root", "cache_dir", "kb_path", "optuna_path")):
        return ProjectPaths(
            Path(project.root),
            Path(project.cache_dir),
            Path(project.kb_path),
            Path(project.optuna_path),
        )
    if not isinstance(project, str | Path):
        raise ValidationError("project", f"expected a folder or a Project, got {project!r}")
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise ValidationError("project", f"folder {str(root)!r} does not exist")
    return project_paths(root)


def resolve_storage(
    storage: Any, paths: ProjectPaths | None
) -> str | optuna.storages.BaseStorage | None:
    """None (in memory), an RDB URL, a path to a SQLite file, or an Optuna storage."""
    import optuna

    if storage is None:
        if paths is None:
            return None
        storage = paths.optuna_path
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if isinstance(storage, Path) or (isinstance(storage, str) and "://" not in storage):
        path = Path(storage).expanduser().resolve()
        if path.is_dir():
            raise ValidationError("storage", f"{str(path)!r} is a folder, expected a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if isinstance(storage, str):
        return storage
    raise ValidationError(
        "storage", f"expected an RDB URL, a SQLite file path or an Optuna storage, got {storage!r}"
    )


def storage_label(storage: Any) -> str | None:
    if storage is None:
        return None
    return storage if isinstance(storage, str) else type(storage).__name__


def is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
