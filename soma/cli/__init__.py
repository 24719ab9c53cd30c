"""The ``soma`` command line.

Each core command group lives in its own module of this package and registers on ``app``
(see ``_groups``). The faces (agent, MCP server, TUI) own their groups and plug in through
the ``soma.commands`` entry points (see ``_faces``): this package imports none of them.
"""

from __future__ import annotations

import typer

import soma
from soma.cli._faces import SomaGroup

app = typer.Typer(
    name="soma",
    help="Soma: cached ML pipelines, studies, a knowledge base and research tools.",
    no_args_is_help=True,
    add_completion=False,
    cls=SomaGroup,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"soma {soma.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Soma's command line."""


def _register() -> None:
    # Each module adds its commands to `app`; importing them is cheap (heavy imports are
    # deferred into the commands themselves).
    from soma.cli import _groups  # noqa: F401


def main() -> None:
    _register()
    app()
