"""Pipeline specs: JSON or expression strings, parsed safely into ``soma._expr`` expressions.

Two equivalent forms:

* JSON: ``{"chain": [...]}``, ``{"fork": [...]}``, ``{"filter": "PCA", "params": {...}}``;
  a list is a chain, and a string anywhere is read as an expression, so ``"PCA"`` means
  ``PCA()`` with default parameters and ``"PCA(n_components=8)"`` works too;
* an expression string: ``"StandardScale() >> PCA(n_components=16) >> LogReg(C=1.0)"``.
  Only filter names from the catalog (called with literal keyword arguments, or bare for
  the defaults), ``>>``, ``|`` and parentheses are accepted. The string is parsed with
  :mod:`ast` and each argument read with :func:`ast.literal_eval`; nothing is evaluated.

``>>`` binds tighter than ``|`` (as in Python): ``A() | B() >> C()`` is ``A() | (B() >> C())``.

>>> from soma import Filter, search
>>> class Scale(Filter):
...     factor = search(0.1, 10.0, default=1.0)
...     def forward(self, x, state):
...         return x * self.factor
>>> class Shift(Filter):
...     by = 0.0
...     def forward(self, x, state):
...         return x + self.by
>>> catalog = {"Scale": Scale, "Shift": Shift}
>>> spec_to_string(parse_spec("Scale(factor=2.0) >> (Shift | Shift(by=1.0))", catalog))
'Scale(factor=2.0) >> (Shift() | Shift(by=1.0))'
>>> spec_to_json(parse_spec('{"chain": ["Scale", {"filter": "Shift"}]}', catalog))
{'chain': [{'filter': 'Scale'}, {'filter': 'Shift'}]}
>>> try:
...     parse_spec("__import__('os').system('ls')", catalog)
... except ProjectError as exc:
...     print(str(exc)[:70])
pipeline spec: "__import__('os').system" at column 1: attribute access
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from soma._expr import Chain, Fork, chain, fork
from soma._pyast import parse as parse_python
from soma.errors import ProjectError
from soma.filter import Filter
from soma.project._discover import FilterCatalog, FilterInfo, unknown_filter_message
from soma.project._spec_render import spec_to_json, spec_to_string  # noqa: F401 (doctest)

__all__ = ["parse_spec"]

Expr = Filter | Chain | Fork
#: Longer specs are refused before parsing: deeply nested input can exhaust the parser.
MAX_SPEC_CHARS = 20_000
_HINT = "write FilterName(param=value) >> ..."


def parse_spec(spec: str | Mapping[str, Any] | list[Any], catalog: Any) -> Expr:
    """Parse a JSON or expression spec into filters combined with ``>>`` / ``|``.

    ``catalog`` is a :class:`FilterCatalog` or a mapping of name -> Filter class (or
    FilterInfo). Raises ProjectError naming the offending piece; never evaluates code.
    """
    classes = _classes(catalog)
    if isinstance(spec, str):
        text = spec.strip()
        if text[:1] in ("{", "["):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ProjectError(f"pipeline spec: invalid JSON: {exc}") from None
            return _from_json(data, classes, "$")
        return _from_expression(spec, classes, "")
    if isinstance(spec, Mapping | list):
        return _from_json(spec, classes, "$")
    raise ProjectError(
        f"pipeline spec: expected an expression string or a JSON object, got {type(spec).__name__}"
    )


def _classes(catalog: Any) -> dict[str, type[Filter]]:
    if isinstance(catalog, FilterCatalog):
        return catalog.classes()
    if not isinstance(catalog, Mapping):
        raise ProjectError(
            f"parse_spec: catalog must be a FilterCatalog or a mapping of names to Filter "
            f"classes, got {type(catalog).__name__}"
        )
    classes: dict[str, type[Filter]] = {}
    for name, value in catalog.items():
        cls = value.cls if isinstance(value, FilterInfo) else value
        if not (isinstance(cls, type) and issubclass(cls, Filter)):
            raise ProjectError(f"parse_spec: catalog entry {name!r} is not a Filter class")
        classes[name] = cls
    return classes


# -- JSON form ------------------------------------------------------------------------


def _from_json(node: Any, classes: dict[str, type[Filter]], path: str) -> Expr:
    if isinstance(node, str):
        return _from_expression(node, classes, f"{path}: ")
    if isinstance(node, list):
        return _combine(node, classes, path, chain, "chain")
    if not isinstance(node, Mapping):
        raise ProjectError(
            f"pipeline spec: {path}: expected a filter name, a list, or an object with "
            f"'chain', 'fork' or 'filter', got {type(node).__name__} {node!r}"
        )
    kinds = [k for k in ("chain", "fork", "filter") if k in node]
    if len(kinds) != 1:
        found = ", ".join(repr(k) for k in node) or "no keys"
        raise ProjectError(
            f"pipeline spec: {path}: an object needs exactly one of 'chain', 'fork', "
            f"'filter'; found {found}"
        )
    kind = kinds[0]
    allowed = {"filter", "params"} if kind == "filter" else {kind}
    extra = sorted(str(k) for k in node if k not in allowed)
    if extra:
        raise ProjectError(
            f"pipeline spec: {path}: unknown key(s) {', '.join(map(repr, extra))} next to "
            f"{kind!r} (allowed: {', '.join(sorted(allowed))})"
        )
    if kind == "filter":
        name = node["filter"]
        params = node.get("params", {})
        if not isinstance(name, str):
            raise ProjectError(f"pipeline spec: {path}.filter: expected a filter name string")
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise ProjectError(
                f"pipeline spec: {path}.params: expected an object of parameter values, "
                f"got {params!r}"
            )
        return _make(name, _tuples_back(classes.get(name), dict(params)), classes, f"{path}: ")
    items = node[kind]
    if not isinstance(items, list):
        raise ProjectError(
            f"pipeline spec: {path}.{kind}: expected a list of steps, got {type(items).__name__}"
        )
    return _combine(items, classes, f"{path}.{kind}", chain if kind == "chain" else fork, kind)


def _combine(items: list[Any], classes: dict[str, type[Filter]], path: str, op: Any, kind: str):
    if not items:
        raise ProjectError(f"pipeline spec: {path}: an empty {kind} has nothing to run")
    steps = [_from_json(item, classes, f"{path}[{i}]") for i, item in enumerate(items)]
    result = steps[0]
    for step in steps[1:]:
        result = op(result, step)
    return result


def _tuples_back(cls: type[Filter] | None, params: dict[str, Any]) -> dict[str, Any]:
    """JSON has no tuples: give a list back its tuple form where the default is a tuple."""
    if cls is None:
        return params
    decls = cls.param_declarations()
    return {
        k: tuple(v) if isinstance(decls.get(k), tuple) and isinstance(v, list) else v
        for k, v in params.items()
    }


def _make(name: str, params: dict[str, Any], classes: dict[str, type[Filter]], where: str):
    cls = classes.get(name)
    if cls is None:
        raise ProjectError(f"pipeline spec: {where}{unknown_filter_message(name, classes)}")
    try:
        return cls(**params)
    except Exception as exc:  # ParamError, or whatever a custom __init__ raises
        raise ProjectError(f"pipeline spec: {where}{exc}") from exc


# -- expression form ------------------------------------------------------------------


def _from_expression(text: str, classes: dict[str, type[Filter]], where: str) -> Expr:
    if len(text) > MAX_SPEC_CHARS:
        raise ProjectError(f"pipeline spec: {where}longer than {MAX_SPEC_CHARS} characters")
    if not text.strip():
        raise ProjectError(f"pipeline spec: {where}empty; {_HINT}")
    source = text.strip()
    try:
        tree = parse_python(source, mode="eval")
    except SyntaxError as exc:
        raise ProjectError(
            f"pipeline spec: {where}invalid syntax at column {exc.offset}: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ProjectError(f"pipeline spec: {where}cannot be parsed: {exc}") from None
    return _Reader(source, classes, where).read(tree.body)


class _Reader:
    def __init__(self, source: str, classes: dict[str, type[Filter]], where: str) -> None:
        self.source = source
        self.classes = classes
        self.where = where

    def fail(self, node: ast.AST, problem: str) -> ProjectError:
        piece = ast.get_source_segment(self.source, node) or type(node).__name__
        if len(piece) > 60:
            piece = piece[:57] + "..."
        column = getattr(node, "col_offset", 0) + 1
        return ProjectError(f"pipeline spec: {self.where}{piece!r} at column {column}: {problem}")

    def read(self, node: ast.expr) -> Expr:
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.RShift):
                return chain(self.read(node.left), self.read(node.right))
            if isinstance(node.op, ast.BitOr):
                return fork(self.read(node.left), self.read(node.right))
            raise self.fail(node, f"operator not allowed: only >> and |; {_HINT}")
        if isinstance(node, ast.Name):
            return self.make(node.id, {}, node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise self.fail(node, f"attribute access is not allowed; {_HINT}")
        raise self.fail(
            node, f"{_describe(node)} is not allowed: only filter calls combined with >> and |"
        )

    def call(self, node: ast.Call) -> Expr:
        if isinstance(node.func, ast.Attribute):
            raise self.fail(node.func, f"attribute access is not allowed; {_HINT}")
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "only a filter name can be called")
        if node.func.id not in self.classes:
            raise self.fail(node.func, unknown_filter_message(node.func.id, self.classes))
        if node.args:
            raise self.fail(
                node.args[0], "positional arguments are not allowed; name each parameter"
            )
        params: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.fail(keyword.value, "** unpacking is not allowed")
            try:
                params[keyword.arg] = ast.literal_eval(keyword.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                raise self.fail(
                    keyword.value,
                    f"the value of {keyword.arg!r} must be a literal (number, string, "
                    "True/False/None, or a list/tuple/dict of those)",
                ) from None
        return self.make(node.func.id, params, node)

    def make(self, name: str, params: dict[str, Any], node: ast.AST) -> Filter:
        if name not in self.classes:
            raise self.fail(node, unknown_filter_message(name, self.classes))
        try:
            return self.classes[name](**params)
        except Exception as exc:
            raise self.fail(node, str(exc)) from exc


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.Subscript: "subscripting",
        ast.Constant: "a bare value",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
        ast.UnaryOp: "a unary operator",
        ast.NamedExpr: "an assignment expression",
        ast.Starred: "unpacking",
        ast.JoinedStr: "an f-string",
        ast.IfExp: "a conditional expression",
    }
    for kind, label in names.items():
        if isinstance(node, kind):
            return label
    if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
        return "a literal collection"
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return "a comprehension"
    return f"a {type(node).__name__} expression"
