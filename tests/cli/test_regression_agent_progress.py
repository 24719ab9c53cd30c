"""Issue 17, item 12: ``soma agent run`` says "experiment 3 of 20" with a progress bar, and
prints at once instead of staying silent until the first iteration."""

from __future__ import annotations

import io

from rich.console import Console

from soma_agent._progress import ProgressPrinter


def _printer() -> tuple[ProgressPrinter, io.StringIO]:
    out = io.StringIO()
    return ProgressPrinter(Console(file=out, width=120, force_terminal=False)), out


def test_regression_agent_progress_speaks_at_once() -> None:
    printer, out = _printer()
    try:
        # Nothing has happened in the run yet: the user already sees that it is starting.
        assert "Preparing the agent run" in out.getvalue()
    finally:
        printer.close()


def test_regression_agent_progress_counts_experiments_of_the_maximum() -> None:
    printer, out = _printer()
    try:
        printer({"kind": "run_started", "payload": {"max_experiments": 20, "line": "l"}})
        for i in (1, 2):
            printer({"kind": "hypothesis", "iteration": i, "payload": {"action": "tune"}})
            printer({"kind": "experiment_started", "payload": {"idempotency_key": f"k{i}"}})
            printer(
                {
                    "kind": "experiment_result",
                    "payload": {"status": "ok", "value": 0.9, "experiment_id": f"e{i}"},
                }
            )
        printer({"kind": "hypothesis", "iteration": 3, "payload": {"action": "tune"}})
        text = out.getvalue()
        assert "iteration 1 · experiment 1 of 20" in text
        assert "iteration 3 · experiment 3 of 20" in text
        assert printer.bar(width=10).endswith("2 of 20 done")
        assert "━" in printer.bar(width=10) and "─" in printer.bar(width=10)
    finally:
        printer.close()
