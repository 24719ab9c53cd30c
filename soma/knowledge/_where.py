"""A small, safe language for metric conditions: ``accuracy > 0.9 and loss <= 0.3``.

Grammar (keywords in any case)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" condition ")" | comparison
    comparison := operand op operand (op operand)*      # chained: 0.8 < accuracy <= 0.9
    operand    := name | number
    op         := > | >= | < | <= | == | = | !=

A bare name is a metric; ``metrics.<name>`` says so explicitly and ``params.<name>`` compares
a numeric hyperparameter. Names may contain letters, digits, ``_ . - /``, or be quoted
(``"val loss" < 0.3``). Each comparison needs one name and one number.

Nothing is evaluated as code: the text becomes a tree, and the tree becomes SQL with every
name and number passed as a bound parameter. A metric (or param) that an experiment does not
have, or that is not a number, makes its comparison *unknown*, and an unknown result never
matches (SQL's three-valued logic; ``not`` of unknown stays unknown).

>>> cond = parse_where("accuracy > 0.9 and loss <= 0.3")
>>> cond.matches({"accuracy": 0.95, "loss": 0.2}), cond.matches({"accuracy": 0.95})
(True, False)
>>> parse_where("accuracy >")  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
soma.errors.ValidationError: where: expected a number or a metric name, found the end
at position 10 in 'accuracy >'
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from soma.errors import ValidationError

__all__ = ["WhereClause", "parse_where"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<op>>=|<=|==|!=|=|>|<)
  | (?P<paren>[()])
  | (?P<quoted>"[^"]*"|'[^']*'|`[^`]*`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.\-/]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, op, paren, name, keyword, end
    text: str
    pos: int


@dataclass(frozen=True)
class _Compare:
    source: str  # "metrics" or "params"
    name: str
    op: str
    value: float


@dataclass(frozen=True)
class _Bool:
    op: str  # "and", "or", "not"
    items: tuple[Any, ...]


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "name" and value.lower() in _KEYWORDS:
            tokens.append(_Token("keyword", value.lower(), pos))
        elif kind == "quoted":
            if len(value) == 2:
                raise _error(text, pos, "empty quoted name")
            tokens.append(_Token("name", value[1:-1], pos))
        elif kind == "op":
            tokens.append(_Token("op", "==" if value == "=" else value, pos))
        elif kind != "space":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _error(text: str, pos: int, message: str) -> ValidationError:
    return ValidationError("where", f"{message} at position {pos} in {text!r}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def fail(self, message: str) -> ValidationError:
        found = "the end" if self.tok.kind == "end" else repr(self.tok.text)
        return _error(self.text, self.tok.pos, f"{message}, found {found}")

    def parse(self) -> Any:
        tree = self.parse_or()
        if self.tok.kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the condition")
        return tree

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while self.tok.kind == "keyword" and self.tok.text == "or":
            self.i += 1
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else _Bool("or", tuple(items))

    def parse_and(self) -> Any:
        items = [self.parse_not()]
        while self.tok.kind == "keyword" and self.tok.text == "and":
            self.i += 1
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else _Bool("and", tuple(items))

    def parse_not(self) -> Any:
        if self.tok.kind == "keyword" and self.tok.text == "not":
            self.i += 1
            return _Bool("not", (self.parse_not(),))
        if self.tok.kind == "paren" and self.tok.text == "(":
            self.i += 1
            inner = self.parse_or()
            if not (self.tok.kind == "paren" and self.tok.text == ")"):
                raise self.fail("expected ')'")
            self.i += 1
            return inner
        return self.parse_comparison()

    def operand(self) -> _Token:
        tok = self.tok
        if tok.kind not in ("name", "number"):
            raise self.fail("expected a number or a metric name")
        self.i += 1
        return tok

    def parse_comparison(self) -> Any:
        operands = [self.operand()]
        ops: list[_Token] = []
        while self.tok.kind == "op":
            ops.append(self.tok)
            self.i += 1
            operands.append(self.operand())
        if not ops:
            raise self.fail(f"expected a comparison operator after {operands[0].text!r}")
        parts = [
            self.compare(left, op, right)
            for left, op, right in zip(operands, ops, operands[1:], strict=False)
        ]
        return parts[0] if len(parts) == 1 else _Bool("and", tuple(parts))

    def compare(self, left: _Token, op: _Token, right: _Token) -> _Compare:
        if left.kind == right.kind:
            what = "two numbers" if left.kind == "number" else "two names"
            raise _error(
                self.text, left.pos, f"a comparison needs one name and one number, got {what}"
            )
        name_tok, number_tok, symbol = (
            (left, right, op.text) if left.kind == "name" else (right, left, _FLIP[op.text])
        )
        value = float(number_tok.text)
        if not math.isfinite(value):
            raise _error(self.text, number_tok.pos, "numbers must be finite")
        source, name = "metrics", name_tok.text
        for prefix in ("metrics.", "params."):
            if name.startswith(prefix) and len(name) > len(prefix):
                source, name = prefix[:-1], name[len(prefix) :]
        if '"' in name:
            raise _error(self.text, name_tok.pos, "names cannot contain '\"'")
        return _Compare(source, name, symbol, value)


def _eval(node: Any, data: Mapping[str, Mapping[str, Any]]) -> bool | None:
    if isinstance(node, _Compare):
        value = data.get(node.source, {}).get(node.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return _OPS[node.op](float(value), node.value)
    results = [_eval(item, data) for item in node.items]
    if node.op == "not":
        return None if results[0] is None else not results[0]
    if node.op == "and":
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _sql(node: Any, params: list[Any]) -> str:
    if isinstance(node, _Compare):
        path = f'$."{node.name}"'
        if node.source == "metrics":
            # Stored metrics are always numbers: a missing one extracts as NULL (unknown).
            params.extend([path, node.value])
            return f"(json_extract(metrics, ?) {node.op} ?)"
        params.extend([path, path, node.value])
        # Params may be anything; only numbers compare, the rest (text, true/false) is unknown.
        return (
            f"(CASE WHEN json_type(params, ?) IN ('integer', 'real') "
            f"THEN json_extract(params, ?) {node.op} ? END)"
        )
    if node.op == "not":
        return f"(NOT {_sql(node.items[0], params)})"
    return "(" + f" {node.op.upper()} ".join(_sql(item, params) for item in node.items) + ")"


class WhereClause:
    """A parsed condition: :meth:`to_sql` for queries, :meth:`matches` to test in Python."""

    def __init__(self, text: str, tree: Any) -> None:
        self.text = text
        self._tree = tree

    def matches(self, metrics: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> bool:
        """Whether an experiment with these metrics (and params) satisfies the condition."""
        return _eval(self._tree, {"metrics": metrics, "params": params or {}}) is True

    def to_sql(self) -> tuple[str, list[Any]]:
        """An SQL boolean expression over the JSON columns ``metrics`` and ``params``."""
        params: list[Any] = []
        return _sql(self._tree, params), params

    def names(self) -> list[tuple[str, str]]:
        """The ``(source, name)`` pairs the condition reads, in order of appearance."""
        out: list[tuple[str, str]] = []

        def walk(node: Any) -> None:
            if isinstance(node, _Compare):
                if (node.source, node.name) not in out:
                    out.append((node.source, node.name))
            else:
                for item in node.items:
                    walk(item)

        walk(self._tree)
        return out

    def __repr__(self) -> str:
        return f"WhereClause({self.text!r})"


def parse_where(text: str) -> WhereClause:
    """Parse a condition such as ``"accuracy > 0.9 and loss <= 0.3"``; errors name the position."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            "where", f"expected a condition such as 'accuracy > 0.9', got {text!r}"
        )
    return WhereClause(text, _Parser(text).parse())
