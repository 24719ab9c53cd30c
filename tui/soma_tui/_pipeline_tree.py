"""Turn a stored pipeline spec (an expression string or a JSON-like dict) into tree nodes."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from soma._pyast import parse

__all__ = ["PipelineNode", "pipeline_nodes"]


@dataclass
class PipelineNode:
    """A label and its children; ``Chain`` and ``Fork`` group steps and branches."""

    label: str
    children: list[PipelineNode] = field(default_factory=list)


def pipeline_nodes(spec: Any) -> PipelineNode:
    """Parse ``spec`` without evaluating it.

    Strings are read with :mod:`ast` (``>>`` is a chain, ``|`` a fork, calls are filters);
    the JSON form of :mod:`soma.project` (``chain`` / ``fork`` / ``filter``) maps to the same
    nodes, a list is a chain, and any other dict becomes nested key/value nodes.

    >>> root = pipeline_nodes("Scale() >> (PCA(n=4) | Identity()) >> Ridge(alpha=0.1)")
    >>> root.label, [c.label for c in root.children]
    ('Chain', ['Scale()', 'Fork', 'Ridge(alpha=0.1)'])
    >>> [c.label for c in root.children[1].children]
    ['PCA(n=4)', 'Identity()']
    >>> root = pipeline_nodes({"chain": ["Scale", {"filter": "PCA", "params": {"n": 4}}]})
    >>> [c.label for c in root.children]
    ['Scale', 'PCA(n=4)']
    """
    if isinstance(spec, str):
        try:
            tree = parse(spec.strip(), mode="eval")  # the shared parser lock (soma._pyast)
        except SyntaxError:
            return PipelineNode(spec)
        return _from_ast(tree.body)
    if isinstance(spec, dict):
        return _from_json_spec(spec)
    if isinstance(spec, list | tuple):
        return PipelineNode("Chain", [pipeline_nodes(step) for step in spec])
    return PipelineNode(repr(spec))


def _from_json_spec(spec: dict[str, Any]) -> PipelineNode:
    # soma.project's JSON form: {"chain": [...]}, {"fork": [...]}, {"filter": N, "params": {..}}
    for kind, label in (("chain", "Chain"), ("fork", "Fork")):
        if isinstance(spec.get(kind), list | tuple) and len(spec) == 1:
            return PipelineNode(label, [pipeline_nodes(step) for step in spec[kind]])
    if isinstance(spec.get("filter"), str) and set(spec) <= {"filter", "params"}:
        params = spec.get("params") or {}
        args = (
            ", ".join(f"{k}={v!r}" for k, v in params.items()) if isinstance(params, dict) else ""
        )
        return PipelineNode(f"{spec['filter']}({args})")
    return PipelineNode("spec", _from_mapping(spec))


def _flatten(node: ast.expr, op: type[ast.operator]) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, op):
        return _flatten(node.left, op) + _flatten(node.right, op)
    return [node]


def _from_ast(node: ast.expr) -> PipelineNode:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
        return PipelineNode("Chain", [_from_ast(n) for n in _flatten(node, ast.RShift)])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return PipelineNode("Fork", [_from_ast(n) for n in _flatten(node, ast.BitOr)])
    return PipelineNode(ast.unparse(node))


def _from_mapping(mapping: dict[Any, Any]) -> list[PipelineNode]:
    return [_value_node(str(key), value) for key, value in mapping.items()]


def _value_node(key: str, value: Any) -> PipelineNode:
    if isinstance(value, dict):
        return PipelineNode(key, _from_mapping(value))
    if isinstance(value, list | tuple) and any(isinstance(v, dict | list) for v in value):
        return PipelineNode(key, [_value_node(str(i), v) for i, v in enumerate(value)])
    return PipelineNode(f"{key}: {value!r}")
