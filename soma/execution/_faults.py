"""Named crash points for fault-injection tests: ``SOMA_CRASH_AT=<point>`` kills the process.

A test sets the variable in a subprocess, lets it run up to the point (``kill -9`` exactly
there, with no cleanup of any kind) and checks that a restarted run leaves nothing lost,
duplicated or left running. The points, in the order a run passes them:

* ``pipeline.recorded``: run_pipeline recorded the experiment as running, nothing ran yet;
* ``pipeline.evaluated``: the pipeline ran, its outcome not recorded yet;
* ``pipeline.closed``: the experiment closed, the reply not sent;
* ``trial.asked``: a study trial exists in Optuna (RUNNING), not yet tagged with its owner;
* ``trial.tagged``: the trial carries its owner, nothing ran yet;
* ``trial.ran``: the trial's evaluation ended, neither the knowledge base nor Optuna told;
* ``trial.recorded``: the knowledge base holds the trial's experiment (written by the
  study's writer thread), whatever Optuna has been told by then;
* ``trial.told``: Optuna was told the trial's outcome.

Unset (always, outside tests) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_POINTS", "crash_point"]

CRASH_POINTS = (
    "pipeline.recorded",
    "pipeline.evaluated",
    "pipeline.closed",
    "trial.asked",
    "trial.tagged",
    "trial.ran",
    "trial.recorded",
    "trial.told",
)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``SOMA_CRASH_AT`` names this point."""
    if os.environ.get("SOMA_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
