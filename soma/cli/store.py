"""``soma store ls|put|get|info``: look into and move data in a data store.

STORE is a store URL (a folder, ``s3://bucket/prefix``, ``zarr:///path``, ``zarr+s3://...``)
or, when left out, the ``store`` of the project's soma.toml. S3 credentials come
from the environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, the endpoint from
``AWS_ENDPOINT_URL`` or ``--endpoint-url``); they are not command-line options, so they
never show in a process list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from soma.cli import app
from soma.cli._common import AsJson, ProjectDir, fail

store_app = typer.Typer(
    name="store", help="List, read and write objects in a data store.", no_args_is_help=True
)
app.add_typer(store_app)

StoreUrl = Annotated[
    str | None,
    typer.Option("--store", "-s", help="Store URL (default: store in soma.toml)."),
]
Endpoint = Annotated[
    str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint (MinIO, B2, ...).")
]


def _open(project: Path, url: str | None, endpoint: str | None) -> Any:
    from soma.data import StoreError, open_store
    from soma.errors import SomaError

    if url is None:
        url = _project_store(project)
    options = {"endpoint_url": endpoint} if endpoint else {}
    try:
        return open_store(url, **options)
    except (StoreError, SomaError, ImportError) as exc:
        raise fail(str(exc)) from None


def _project_store(project: Path) -> str:
    import tomllib

    config = project / "soma.toml"
    try:
        data = tomllib.loads(config.read_text()) if config.is_file() else {}
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"{config}: {exc}") from None
    url = data.get("store")
    if not isinstance(url, str) or not url:
        raise fail(f'no --store given and {config} has no store = "URL"')
    if "://" not in url:
        url = str((project / url).resolve())  # relative to the project folder
    return url


def _guard(action: Any) -> Any:
    from soma.errors import SomaError

    try:
        return action()
    except SomaError as exc:
        raise fail(str(exc)) from None


@store_app.command("ls")
def ls(
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this.")] = "",
    store: StoreUrl = None,
    project: ProjectDir = Path("."),
    endpoint_url: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """The keys in the store, with kind, rows and size."""
    opened = _open(project, store, endpoint_url)
    metas = _guard(lambda: [opened.meta(key) for key in opened.keys(prefix)])
    if as_json:
        typer.echo(json.dumps([m.summary() for m in metas]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=repr(opened), title_justify="left")
    for column in ("key", "kind", "rows", "shape", "dtype", "bytes"):
        table.add_column(column)
    for m in metas:
        shape = "" if m.shape is None else str(m.shape)
        table.add_row(m.key, m.kind, str(m.rows or ""), shape, m.dtype or "", str(m.nbytes))
    Console().print(table)


@store_app.command("info")
def info(
    key: Annotated[str, typer.Argument(help="The object's key.")],
    store: StoreUrl = None,
    project: ProjectDir = Path("."),
    endpoint_url: Endpoint = None,
    as_json: AsJson = False,
) -> None:
    """Kind, rows, shape, dtype, size and content hash of one object (its data is not read)."""
    opened = _open(project, store, endpoint_url)
    ref = _guard(lambda: opened.ref(key))
    if as_json:
        typer.echo(ref.model_dump_json())
        return
    for name, value in ref.model_dump(exclude={"start", "count"}).items():
        typer.echo(f"{name:13} {value}")


@store_app.command("put")
def put(
    key: Annotated[str, typer.Argument(help="Key to store under ('-' for the content hash).")],
    file: Annotated[Path, typer.Argument(help=".npy (an array), .json (a value), else bytes.")],
    store: StoreUrl = None,
    project: ProjectDir = Path("."),
    endpoint_url: Endpoint = None,
) -> None:
    """Store a file's content: .npy as an array, .json as its value, anything else as bytes."""
    if not file.is_file():
        raise fail(f"FILE: expected an existing file, got {file}")
    value = _read_file(file)
    opened = _open(project, store, endpoint_url)
    ref = _guard(lambda: opened.put(value, None if key == "-" else key))
    typer.echo(repr(ref))


@store_app.command("get")
def get(
    key: Annotated[str, typer.Argument(help="The object's key.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: print).")
    ] = None,
    store: StoreUrl = None,
    project: ProjectDir = Path("."),
    endpoint_url: Endpoint = None,
) -> None:
    """Read an object: arrays to .npy, JSON values as JSON, bytes as they are."""
    import numpy as np

    opened = _open(project, store, endpoint_url)
    meta = _guard(lambda: opened.meta(key))
    value = _guard(lambda: opened.get(key))
    if output is None:
        if isinstance(value, bytes):
            typer.echo(value.decode("utf-8", "replace"), nl=False)
        elif meta.kind == "json":
            typer.echo(json.dumps(value, indent=2))
        else:
            typer.echo(repr(value))
        return
    if isinstance(value, np.ndarray):
        with open(output, "wb") as handle:
            np.save(handle, value, allow_pickle=False)
    elif isinstance(value, bytes):
        output.write_bytes(value)
    elif meta.kind == "json":
        output.write_text(json.dumps(value))
    else:
        raise fail(f"{key!r} holds a pickled {type(value).__name__}; read it from Python")
    typer.echo(f"wrote {output}")


def _read_file(file: Path) -> Any:
    import numpy as np

    if file.suffix == ".npy":
        try:
            return np.load(file, allow_pickle=False)
        except ValueError as exc:
            raise fail(f"{file}: not a numpy array file: {exc}") from None
    if file.suffix == ".json":
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise fail(f"{file}: not JSON: {exc}") from None
    return file.read_bytes()
