"""Inputs and outputs of the filter tools: list_filters, read_filter_source, write_filter_source."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from soma_tools._base import Record, ToolInput, ToolOutput
from soma_tools._render import markdown_table, more_rows_note

__all__ = [
    "FilterEntry",
    "FilterParam",
    "ListFiltersInput",
    "ListFiltersOutput",
    "ReadFilterSourceInput",
    "ReadFilterSourceOutput",
    "WriteFilterSourceInput",
    "WriteFilterSourceOutput",
]


class FilterParam(Record):
    name: str
    default: Any = None
    space: dict[str, Any] | None = Field(
        None, description="Search space: {'type': 'float'|'int'|'choice', ...}; None if fixed."
    )


class FilterEntry(Record):
    name: str
    file: str = Field(description="Module file, relative to the project root.")
    doc: str = Field("", description="First line of the class docstring.")
    params: list[FilterParam] = Field(default_factory=list)


class ListFiltersInput(ToolInput):
    """List the filter classes the project's filters folder defines."""

    name_contains: str | None = Field(
        None, description="Only filters whose name contains this text (case-insensitive)."
    )


class ListFiltersOutput(ToolOutput):
    filters: list[FilterEntry]
    total: int = Field(description="How many filters matched (the list may show fewer).")
    errors: dict[str, str] = Field(
        default_factory=dict, description="Files that failed to import, with the error."
    )
    resource_uri: str | None = Field(None, description="soma:// resource with the whole list.")

    def render(self) -> str:
        rows = []
        for f in self.filters:
            params = ", ".join(
                f"{p.name}={p.default!r}" + (" (searchable)" if p.space else "") for p in f.params
            )
            rows.append([f.name, f.file, params or "-", f.doc])
        text = f"{self.total} filter(s)\n\n" + markdown_table(
            ["name", "file", "params", "doc"], rows
        )
        text += more_rows_note(len(self.filters), self.total, self.resource_uri)
        for file, err in self.errors.items():
            text += f"\n\nImport error in {file}: {err}"
        return text


class ReadFilterSourceInput(ToolInput):
    """Give exactly one of ``name`` (a filter class) or ``file`` (a path in the filters folder)."""

    name: str | None = Field(None, description="Filter class name, e.g. 'PCA'.")
    file: str | None = Field(
        None,
        max_length=1024,
        description="File path relative to the filters folder, e.g. 'models.py', or as "
        "list_filters gives it, e.g. 'filters/models.py'.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> ReadFilterSourceInput:
        if (self.name is None) == (self.file is None):
            raise ValueError("give exactly one of 'name' or 'file'")
        return self


class ReadFilterSourceOutput(ToolOutput):
    file: str = Field(description="Path relative to the filters folder.")
    source: str = Field(description="The whole file's text (cut if very long, see truncated).")
    filter: str | None = Field(None, description="The class asked for, if any.")
    start_line: int | None = Field(None, description="First line of the class (1-based).")
    end_line: int | None = Field(None, description="Last line of the class (1-based).")
    total_lines: int
    truncated: bool = False
    resource_uri: str | None = Field(
        None, description="soma:// resource with the whole file (when the source was cut)."
    )

    def render(self) -> str:
        where = ""
        if self.filter:
            where = f" — class {self.filter} at lines {self.start_line}-{self.end_line}"
        cut = f"\n(file cut: read {self.resource_uri} for all of it)" if self.truncated else ""
        return (
            f"{self.file} ({self.total_lines} lines){where}\n\n```python\n{self.source}\n```{cut}"
        )


class WriteFilterSourceInput(ToolInput):
    """Create or replace one Python file inside the project's filters folder."""

    path: str = Field(
        max_length=1024,
        description="Relative path inside the filters folder ending in .py, e.g. 'my_scalers.py' "
        "(the folder's own prefix, as list_filters shows files, is accepted too).",
    )
    content: str = Field(description="The whole new file content (valid Python).")


class WriteFilterSourceOutput(ToolOutput):
    path: str = Field(description="Path written, relative to the filters folder.")
    created: bool = Field(description="True if the file did not exist before.")
    backup: str | None = Field(None, description="Backup of the previous version (project path).")
    diff: str = Field(description="Unified diff from the previous version.")
    diff_truncated: bool = False
    filters_import: bool = Field(description="True when every filter file imports after the write.")
    filters_in_file: list[str] = Field(description="Filter classes found in the written file.")
    errors: dict[str, str] = Field(
        default_factory=dict, description="Files that fail to import now, with the error."
    )
    n_filters: int = Field(description="Filters in the whole catalog after the write.")

    def render(self) -> str:
        verb = "created" if self.created else "updated"
        status = "all filter files import" if self.filters_import else "SOME FILES FAIL TO IMPORT"
        lines = [f"{verb} {self.path}; {status}; {self.n_filters} filter(s) in the catalog."]
        lines.append(f"Filters in this file: {', '.join(self.filters_in_file) or 'none'}")
        if self.backup:
            lines.append(f"Previous version saved as {self.backup}")
        for file, err in self.errors.items():
            lines.append(f"Import error in {file}: {err}")
        cut = "\n(diff cut)" if self.diff_truncated else ""
        lines.append(f"\n```diff\n{self.diff}\n```{cut}")
        return "\n".join(lines)
