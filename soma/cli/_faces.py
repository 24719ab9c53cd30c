"""The faces' command groups (``soma agent``, ``soma mcp``, ``soma tui``), found by entry point.

The core CLI never imports a face: each face registers a ``register(app)`` function under the
``soma.commands`` entry-point group (see pyproject.toml), named like the command it adds. A
face is loaded only when its command is invoked or listed (``soma --help``), so ``soma run``
never pays for the TUI's Textual or the MCP SDK. A face that is missing or fails to import
becomes a command that says, in one line, what to install.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

import click
import typer
from typer.core import TyperGroup

__all__ = ["ENTRY_POINT_GROUP", "SomaGroup", "face_entry_points"]

ENTRY_POINT_GROUP = "soma.commands"

# Faces the project ships. Only their names and a phrase are known here (no imports), so that a
# missing one still answers `soma <name>` with what to install instead of "No such command".
_KNOWN_FACES = {
    "agent": "the research agent (soma_agent)",
    "mcp": "the MCP server (soma_mcp)",
    "tui": "the terminal dashboard (soma_tui)",
}
_DISTRIBUTION = "soma-research"


@cache
def face_entry_points() -> dict[str, EntryPoint]:
    """The ``soma.commands`` entry points by command name (read once per process)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _unavailable(name: str, message: str) -> click.Command:
    """A command that prints ``message`` on stderr and exits 1, whatever its arguments."""

    def _say(**_: object) -> None:
        from soma.cli._common import fail

        raise fail(message)

    return click.Command(
        name,
        callback=_say,
        help=f"(unavailable) {message}",
        short_help="(unavailable: see `soma " + name + "`)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
    )


def _install_hint(name: str, exc: ImportError) -> str:
    missing = (exc.name or "").split(".")[0]
    what = _KNOWN_FACES.get(name, f"the {name!r} command")
    if not missing or missing.startswith("soma"):
        # The face's own package is absent or broken: reinstall the distribution that ships it.
        return (
            f"soma {name}: {what} is not installed ({exc}); "
            f"install it with: pip install {_DISTRIBUTION}"
        )
    return (
        f"soma {name}: {what} needs the {missing!r} package, which is not installed; "
        f"install it with: pip install {missing}"
    )


def _load(name: str, ep: EntryPoint) -> click.Command:
    try:
        register = ep.load()
    except ImportError as exc:
        return _unavailable(name, _install_hint(name, exc))
    holder = typer.Typer()
    register(holder)
    command = typer.main.get_group(holder).commands.get(name)
    if command is None:
        # A packaging bug, not a user error: say which entry point is wrong.
        return _unavailable(
            name, f"soma {name}: entry point {ep.value!r} registered no command named {name!r}"
        )
    return command


class SomaGroup(TyperGroup):
    """The root ``soma`` group: core commands, then the faces' groups, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        core = super().list_commands(ctx)
        return core + sorted(n for n in face_entry_points() if n not in core)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = face_entry_points().get(cmd_name)
        if ep is not None:
            command = _load(cmd_name, ep)
        elif cmd_name in _KNOWN_FACES:
            command = _unavailable(
                cmd_name,
                f"soma {cmd_name}: {_KNOWN_FACES[cmd_name]} is not installed; "
                f"install it with: pip install {_DISTRIBUTION}",
            )
        else:
            return None
        self.add_command(command, cmd_name)
        return command
