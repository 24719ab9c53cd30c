"""Conversions between records and SQLite rows, and the SQL for structured filters."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic

from soma.errors import ValidationError
from soma.knowledge._records import (
    ORIGINS,
    STATUSES,
    VERDICTS,
    Experiment,
    JournalEntry,
    ResearchLine,
    as_utc,
)
from soma.knowledge._where import parse_where

__all__ = [
    "EXPERIMENT_COLUMNS",
    "experiment_from_row",
    "experiment_to_row",
    "filter_sql",
    "journal_from_row",
    "line_from_row",
    "parse_time",
    "validation_error",
]

_JSON_COLUMNS = ("params", "metrics", "tags", "cache_keys", "pipeline_spec")
_TIME_COLUMNS = ("started", "finished")
EXPERIMENT_COLUMNS: tuple[str, ...] = tuple(Experiment.model_fields)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)


def experiment_to_row(exp: Experiment) -> dict[str, Any]:
    """The experiments-table row for ``exp`` (JSON text for structured fields, epoch seconds)."""
    row: dict[str, Any] = {name: getattr(exp, name) for name in EXPERIMENT_COLUMNS}
    for name in _JSON_COLUMNS:
        value = row[name]
        # pipeline_spec may be a dict or a string: JSON keeps the two apart.
        row[name] = None if value is None and name == "pipeline_spec" else _dumps(value)
    for name in _TIME_COLUMNS:
        value = row[name]
        row[name] = None if value is None else value.timestamp()
    return row


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def experiment_from_row(row: Mapping[str, Any]) -> Experiment:
    data = {name: row[name] for name in EXPERIMENT_COLUMNS}
    for name in _JSON_COLUMNS:
        if data[name] is not None:
            data[name] = json.loads(data[name])
    for name in _TIME_COLUMNS:
        data[name] = _time(data[name])
    return Experiment.model_validate(data)


def line_from_row(row: Mapping[str, Any]) -> ResearchLine:
    return ResearchLine(
        name=row["name"],
        metric=row["metric"],
        direction=row["direction"],
        description=row["description"] or "",
        created=_time(row["created"]),
        status=row["status"],
    )


def journal_from_row(row: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        run_id=row["run_id"],
        iteration=row["iteration"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        time=_time(row["time"]),
    )


def validation_error(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """A Soma ValidationError naming the first offending field of a pydantic error."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    message = str(first["msg"]).removeprefix("Value error, ")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return ValidationError(prefix + field, message)


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: datetime | str | None, field: str) -> datetime | None:
    """A datetime, an ISO 8601 string, or a relative age such as ``"30m"``, ``"2h"``, ``"7d"``
    (that long before now). Naive times are local time."""
    if value is None or isinstance(value, datetime):
        return None if value is None else as_utc(value)
    if isinstance(value, str):
        match = _RELATIVE.match(value)
        if match:
            delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
            return datetime.now(UTC) - delta
        try:
            return as_utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ValidationError(
        field, f"expected a datetime, an ISO 8601 time or an age like '2h' or '7d', got {value!r}"
    )


def _choices(value: str | Sequence[str] | None, field: str, allowed: Sequence[str]) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if item not in allowed:
            raise ValidationError(field, f"expected one of {', '.join(allowed)}, got {item!r}")
    return items


def filter_sql(
    *,
    line: str | None = None,
    tags: str | Sequence[str] | None = None,
    status: str | Sequence[str] | None = None,
    origin: str | Sequence[str] | None = None,
    where: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    run_id: str | None = None,
    verdict: str | Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """A SQL condition over the experiments table (``"1"`` when nothing filters) and its
    parameters. Tags must all be present; several statuses, origins or verdicts mean any."""
    clauses: list[str] = []
    params: list[Any] = []
    if line is not None:
        clauses.append("line = ?")
        params.append(line)
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    choices = (("status", status, STATUSES), ("origin", origin, ORIGINS))
    for column, value, allowed in (*choices, ("verdict", verdict, VERDICTS)):
        items = _choices(value, column, allowed)
        if items:
            clauses.append(f"{column} IN ({', '.join('?' for _ in items)})")
            params.extend(items)
    tag_list = [tags] if isinstance(tags, str) else list(tags or [])
    for tag in tag_list:
        clauses.append("EXISTS (SELECT 1 FROM json_each(experiments.tags) WHERE value = ?)")
        params.append(tag)
    if where is not None:
        sql, where_params = parse_where(where).to_sql()
        clauses.append(sql)
        params.extend(where_params)
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None:
        clauses.append("started >= ?")
        params.append(start.timestamp())
    if end is not None:
        clauses.append("started <= ?")
        params.append(end.timestamp())
    return (" AND ".join(clauses) if clauses else "1"), params
