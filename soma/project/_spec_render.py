"""Rendering expressions back into pipeline specs: the canonical string and the JSON form.

``parse_spec`` of what these produce rebuilds the same pipeline (same filters, same
parameters, same structure); parameters equal to their declared default are left out
unless ``include_defaults=True``.
"""

from __future__ import annotations

import math
from typing import Any

from soma._expr import Chain, Fork
from soma.errors import ProjectError
from soma.filter import Filter
from soma.space import SearchSpace

__all__ = ["spec_to_json", "spec_to_string"]

Expr = Filter | Chain | Fork


def spec_to_string(expr: Expr, *, include_defaults: bool = False) -> str:
    """The canonical expression string; ``parse_spec`` of it rebuilds the same pipeline.

    Parameters equal to their declared default are left out unless ``include_defaults``.
    """
    return _render(expr, include_defaults)


def _render(expr: Any, include_defaults: bool) -> str:
    _refuse_control(expr)
    if isinstance(expr, Filter):
        args = ", ".join(
            f"{k}={_literal(v, f'{type(expr).__name__}.{k}')}"
            for k, v in _shown_params(expr, include_defaults).items()
        )
        return f"{type(expr).__name__}({args})"
    if isinstance(expr, Chain):
        return " >> ".join(
            f"({_render(s, include_defaults)})"
            if isinstance(s, Fork)
            else _render(s, include_defaults)
            for s in expr.steps
        )
    if isinstance(expr, Fork):
        inner = " | ".join(
            f"({_render(b, include_defaults)})"
            if isinstance(b, Chain)
            else _render(b, include_defaults)
            for b in expr.branches
        )
        return inner  # a chain adds the parentheses a fork needs inside it
    raise ProjectError(
        f"spec_to_string: expected a Filter, Chain or Fork, got {type(expr).__name__}"
    )


def spec_to_json(expr: Expr, *, include_defaults: bool = False) -> dict[str, Any]:
    """The JSON form (``{"chain": [...]}`` / ``{"fork": [...]}`` / ``{"filter": ...}``)."""
    _refuse_control(expr)
    if isinstance(expr, Filter):
        out: dict[str, Any] = {"filter": type(expr).__name__}
        params = _shown_params(expr, include_defaults)
        if params:
            out["params"] = {
                k: _json_value(v, f"{type(expr).__name__}.{k}") for k, v in params.items()
            }
        return out
    if isinstance(expr, Chain):
        return {"chain": [spec_to_json(s, include_defaults=include_defaults) for s in expr.steps]}
    if isinstance(expr, Fork):
        return {"fork": [spec_to_json(b, include_defaults=include_defaults) for b in expr.branches]}
    raise ProjectError(f"spec_to_json: expected a Filter, Chain or Fork, got {type(expr).__name__}")


def _refuse_control(expr: Any) -> None:
    from soma._control_flow import ControlStep

    if isinstance(expr, ControlStep):
        raise ProjectError(
            f"{type(expr).__name__} steps hold Python callables and have no pipeline-spec "
            "form; build such graphs in Python"
        )


def _shown_params(f: Filter, include_defaults: bool) -> dict[str, Any]:
    if include_defaults:
        return f.params
    defaults = {
        k: d.default if isinstance(d, SearchSpace) else d
        for k, d in type(f).param_declarations().items()
    }
    return {
        k: v
        for k, v in f.params.items()
        if not (type(v) is type(defaults[k]) and _same(v, defaults[k]))
    }


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays compare elementwise
        return False


def _literal(value: Any, where: str) -> str:
    """Python literal text that ``ast.literal_eval`` reads back as ``value``."""
    if value is None or isinstance(value, bool | int | str | bytes):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise ProjectError(f"{where}: NaN has no literal form in a pipeline spec")
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v, where) for v in value) + "]"
    if isinstance(value, tuple):
        body = ", ".join(_literal(v, where) for v in value)
        return f"({body},)" if len(value) == 1 else f"({body})"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{_literal(k, where)}: {_literal(v, where)}" for k, v in value.items())
            + "}"
        )
    raise ProjectError(
        f"{where}: a {type(value).__name__} value has no literal form in a pipeline spec"
    )


def _json_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProjectError(f"{where}: {value!r} has no JSON form")
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, where) for k, v in value.items()}
    raise ProjectError(f"{where}: a {type(value).__name__} value has no JSON form")
