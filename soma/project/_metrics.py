"""Metrics named in ``soma.toml``: built-ins backed by scikit-learn, or ``FILE.py:FUNCTION``.

The resolved metric is the one :class:`soma.experiments.MetricSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from soma.errors import ProjectError
from soma.experiments._metrics import MetricSpec
from soma.project._config import CONFIG_FILE, MetricConfig, parse_ref, project_relative
from soma.project._imports import describe_import_error, import_file, relative_path
from soma.vocabulary import Direction

__all__ = ["BUILTIN_METRICS", "MetricSpec", "resolve_metric"]

#: name -> (sklearn.metrics function, keyword arguments, natural direction)
BUILTIN_METRICS: dict[str, tuple[str, dict[str, Any], Direction]] = {
    "accuracy": ("accuracy_score", {}, Direction.MAXIMIZE),
    "balanced_accuracy": ("balanced_accuracy_score", {}, Direction.MAXIMIZE),
    "f1_macro": ("f1_score", {"average": "macro"}, Direction.MAXIMIZE),
    "r2": ("r2_score", {}, Direction.MAXIMIZE),
    "mse": ("mean_squared_error", {}, Direction.MINIMIZE),
    "rmse": ("root_mean_squared_error", {}, Direction.MINIMIZE),
    "mae": ("mean_absolute_error", {}, Direction.MINIMIZE),
}


class _SklearnMetric:
    """Picklable wrapper that imports scikit-learn only when first called."""

    def __init__(self, function: str, kwargs: dict[str, Any]) -> None:
        self.function = function
        self.kwargs = kwargs

    def __call__(self, y_true: Any, y_pred: Any) -> float:
        import sklearn.metrics

        return float(getattr(sklearn.metrics, self.function)(y_true, y_pred, **self.kwargs))

    def __repr__(self) -> str:
        return f"sklearn.metrics.{self.function}"


def resolve_metric(config: MetricConfig, root: Path, index: int) -> MetricSpec:
    """Turn one ``[[metric]]`` entry into a MetricSpec (imports a custom metric's file)."""
    section = "[metric]" if index == 0 else f"[[metric]] #{index + 1}"
    key, direction_key = f"{section} name", f"{section} direction"
    if config.name in BUILTIN_METRICS:
        function, kwargs, natural = BUILTIN_METRICS[config.name]
        if config.direction is not None and config.direction != natural:
            word = "higher" if natural is Direction.MAXIMIZE else "lower"
            raise ProjectError(
                f"{CONFIG_FILE}: {direction_key}: {config.name!r} is better when {word}; "
                f"expected {natural!r}, got {config.direction!r}"
            )
        return MetricSpec(
            config.name, natural, _SklearnMetric(function, kwargs), f"sklearn.metrics.{function}"
        )
    if ":" not in config.name:
        known = ", ".join(BUILTIN_METRICS)
        raise ProjectError(
            f"{CONFIG_FILE}: {key}: unknown metric {config.name!r}; expected one of {known} "
            "or 'FILE.py:FUNCTION' for your own"
        )
    file, func = parse_ref(config.name, key)
    if config.direction is None:
        raise ProjectError(
            f"{CONFIG_FILE}: {direction_key}: required for the custom "
            f"metric {config.name!r}; expected 'maximize' or 'minimize'"
        )
    path = project_relative(root, file, key)
    fn = load_function(path, func, root, key)
    return MetricSpec(func, config.direction, fn, config.name)


def load_function(path: Path, func: str, root: Path, key: str) -> Callable[..., Any]:
    """Import ``path`` in isolation and return its callable ``func``; ProjectError otherwise."""
    rel = relative_path(path, root)
    if not path.is_file():
        raise ProjectError(f"{CONFIG_FILE}: {key}: file {rel!r} not found in {root}")
    try:
        module = import_file(path)
    except (Exception, SystemExit) as exc:
        raise ProjectError(
            f"{CONFIG_FILE}: {key}: {rel} failed to import: "
            + describe_import_error(exc, path, root)
        ) from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ProjectError(f"{CONFIG_FILE}: {key}: {rel} defines no function {func!r}")
    return fn
