"""Soma's terminal dashboard: watch research lines and steer agent runs.

>>> from soma_tui import SomaApp
>>> app = SomaApp("research/.soma/kb.sqlite")   # nothing is opened until the app runs

Run it with ``soma tui --project DIR`` or :func:`run`.
"""

from __future__ import annotations

from soma_tui._app import SomaApp, run
from soma_tui._commands import SomaCommands

__all__ = ["SomaApp", "SomaCommands", "run"]
