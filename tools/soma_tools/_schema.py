"""JSON schemas of the tool models: ``$ref``s inlined, nullable unions as type lists.

Some MCP clients do not resolve ``$ref``; and clients that validate every structured result
(the Python SDK's does, with ``jsonschema``) do it several times faster on a schema with
``"type": ["string", "null"]`` than on pydantic's ``anyOf`` of two branches, and without
the per-property ``title`` pydantic adds (the property name says it already). The tool
models are not recursive, so inlining terminates; a recursive model is refused.

>>> schema = {
...     "$defs": {"Inner": {"properties": {"x": {"title": "X", "type": "integer"}}}},
...     "properties": {
...         "inner": {"$ref": "#/$defs/Inner"},
...         "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Note"},
...     },
... }
>>> inline_schema(schema)["properties"]
{'inner': {'properties': {'x': {'type': 'integer'}}}, 'note': {'type': ['string', 'null']}}
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["inline_schema"]

_PREFIX = "#/$defs/"


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every local ``$ref`` replaced by a copy of its definition."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_PREFIX):
                name = ref[len(_PREFIX) :]
                if name in seen:
                    raise ValueError(f"recursive model {name!r} cannot be inlined")
                target = walk(copy.deepcopy(defs[name]), (*seen, name))
                siblings = {k: walk(v, seen) for k, v in node.items() if k != "$ref"}
                return {**target, **siblings}
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    return _simplify(walk(schema, ()))


def _simplify(node: Any) -> Any:
    if isinstance(node, list):
        return [_simplify(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _simplify(v) for k, v in node.items()}
    props = out.get("properties")
    if isinstance(props, dict):
        for prop in props.values():
            if isinstance(prop, dict):
                prop.pop("title", None)
    branches = out.get("anyOf")
    if isinstance(branches, list) and all(_bare_type(b) for b in branches):
        types: list[str] = []
        for b in branches:
            t = b["type"]
            types.extend(t if isinstance(t, list) else [t])
        del out["anyOf"]
        out["type"] = types[0] if len(types) == 1 else types
    return out


def _bare_type(branch: Any) -> bool:
    """A branch that says only its type (or only 'any object'), so a type list says the same."""
    if not isinstance(branch, dict) or "type" not in branch:
        return False
    extra = set(branch) - {"type"}
    return not extra or (
        branch["type"] == "object"
        and extra == {"additionalProperties"}
        and branch["additionalProperties"] is True
    )
