"""Imports every core command module so it registers its commands on ``soma.cli.app``.

The faces' groups (``soma agent``, ``soma mcp``, ``soma tui``) are not imported here: they
come through the ``soma.commands`` entry points (``soma.cli._faces``).

Keep heavy imports inside the command functions, so ``soma --help`` stays fast.
"""

from soma.cli import (  # noqa: F401
    cache,
    cluster,
    dashboard,
    kb,
    project,
    run,
    store,
    study,
)
