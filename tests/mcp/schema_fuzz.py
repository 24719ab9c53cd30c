"""Hypothesis strategies generated from the tools' JSON schemas, for fuzzing the tool layer.

``valid_arguments(schema)`` draws arguments the schema allows (with the edge values that break
code: blank and very long strings, path-like text, integers at and past int64, huge floats);
``invalid_arguments(schema)`` draws arguments that break the schema in one field (a wrong type,
a boolean where a number is expected, a number out of bounds, an unknown field), which a tool
must refuse with a ToolError naming that field. Used by ``test_fuzz_tools.py`` and by
``tools/bench/fuzz_mcp.py``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["UNKNOWN_FIELD", "invalid_arguments", "valid_arguments", "wrong_fields"]

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
EDGE_TEXT = st.sampled_from(
    ["", " ", "\t\n", "x" * 5000, "../outside.py", "/etc/passwd", "a" * 300 + ".py", "é.py"]
)
EDGE_INTS = st.sampled_from([-1, 0, 2**31, 2**32, 2**63 - 1, 2**63, -(2**63) - 1, 10**30])


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if kind is None:
        return []
    return list(kind) if isinstance(kind, list) else [kind]


def valid_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([valid_value(s) for s in schema[key]])
    kinds = _types(schema)
    if not kinds:
        return JSON_SCALARS
    return st.one_of([_of_type(kind, schema) for kind in kinds])


def _of_type(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        bounded = st.integers(min_value=low, max_value=high)
        if low is None and high is None:
            return bounded | EDGE_INTS
        return bounded
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kind == "string":
        if "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
        else:
            text = st.text(max_size=40) | EDGE_TEXT
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        return text.filter(lambda t: len(t) >= low and (high is None or len(t) <= high))
    if kind == "array":
        return st.lists(valid_value(schema.get("items", {})), max_size=4)
    if kind == "object":
        return valid_arguments(schema)
    return JSON_SCALARS


def valid_arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        extra = schema.get("additionalProperties", False)
        if extra is False:
            return st.just({})
        values = JSON_SCALARS if extra is True else valid_value(extra)
        return st.dictionaries(st.text(max_size=12), values, max_size=3)
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: valid_value(s) for name, s in props.items() if name in required},
        optional={name: valid_value(s) for name, s in props.items() if name not in required},
    )


def _wrong_value(schema: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    """A value this field's schema refuses, or None when every value is allowed."""
    kinds = set()
    for option in [schema, *schema.get("anyOf", ()), *schema.get("oneOf", ())]:
        kinds.update(_types(option))
        if "enum" in option or "const" in option:
            kinds.add("enum")
    if not kinds:
        return None
    wrong: list[st.SearchStrategy[Any]] = []
    if "integer" in kinds and "boolean" not in kinds:
        wrong.append(st.booleans())  # a bool is an int in Python: must still be refused
        wrong.append(st.sampled_from(["3", "1e3"]))  # numeric text is not a number
        if "minimum" in schema:
            wrong.append(st.just(schema["minimum"] - 1))
        if "maximum" in schema:
            wrong.append(st.just(schema["maximum"] + 1))
    if "string" in kinds:
        wrong.append(st.just(["a", "list"]))
        if "maxLength" in schema:
            wrong.append(st.just("a" * (schema["maxLength"] + 1)))
    if kinds == {"enum"} or kinds == {"enum", "string"}:
        wrong.append(st.just("not-one-of-the-choices"))
    if "object" not in kinds and "array" not in kinds:
        wrong.append(st.just({"nested": "object"}))
    if not wrong:
        return None
    if "null" not in kinds:
        wrong.append(st.none())
    return st.one_of(wrong)


def wrong_fields(schema: dict[str, Any]) -> list[str]:
    """The fields for which :func:`invalid_arguments` can draw a refused value."""
    props: dict[str, Any] = schema.get("properties", {})
    names = [name for name, field in props.items() if _wrong_value(field) is not None]
    if schema.get("additionalProperties") is False:
        names.append(UNKNOWN_FIELD)
    return names


UNKNOWN_FIELD = "not_a_field"


def invalid_arguments(schema: dict[str, Any], field: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments valid except for ``field`` (one of :func:`wrong_fields`)."""
    if field == UNKNOWN_FIELD:
        return valid_arguments(schema).map(lambda args: {**args, UNKNOWN_FIELD: 1})
    wrong = _wrong_value(schema["properties"][field])
    assert wrong is not None, field
    return st.tuples(valid_arguments(schema), wrong).map(lambda t: {**t[0], field: t[1]})
