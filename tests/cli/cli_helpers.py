"""Helpers for the command-line tests."""

from __future__ import annotations

from typer.testing import CliRunner

from soma.cli import _register, app

_register()


def soma(*args: str) -> tuple[int, str]:
    """Run ``soma ARGS`` in process (output not a terminal, as in a log or CI)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output
