"""Imports every command module so it registers its commands on ``soma.cli.app``.

Keep heavy imports inside the command functions, so ``soma --help`` stays fast.
"""

from soma.cli import (  # noqa: F401
    agent,
    cache,
    cluster,
    kb,
    mcp,
    project,
    run,
    store,
    study,
    tui,
)
