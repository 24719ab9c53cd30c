"""Readable text for tool results: compact numbers and bounded Markdown tables.

Tool results are read by people and by language models, whose context is precious: a
table longer than ``limit`` rows shows its first rows and says how many were left out and
where the whole table lives (a ``soma://`` resource).

>>> print(markdown_table(["a", "b"], [[1, 0.123456], [2, None]]))
| a | b |
|---|---|
| 1 | 0.1235 |
| 2 | - |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["DEFAULT_ROW_LIMIT", "fmt", "markdown_table", "more_rows_note", "shorten"]

#: Rows a table in a tool result shows before it is summarised.
DEFAULT_ROW_LIMIT = 25


def fmt(value: Any) -> str:
    """One cell: floats to 4 significant digits, None as '-', long text shortened.

    >>> fmt(3.14159265), fmt(12345.678), fmt(None), fmt(True)
    ('3.142', '1.235e+04', '-', 'True')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    text = str(value)
    return shorten(text.replace("|", "\\|").replace("\n", " "), 80)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in an ellipsis when cut.

    >>> shorten("abcdefgh", 5)
    'abcd…'
    """
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table of already-bounded rows."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def more_rows_note(shown: int, total: int, resource_uri: str | None) -> str:
    """The line under a summarised table ('' when nothing was left out)."""
    if shown >= total:
        return ""
    where = f"; read {resource_uri} for all of them" if resource_uri else ""
    return f"\n({total - shown} more row(s) not shown{where})"
