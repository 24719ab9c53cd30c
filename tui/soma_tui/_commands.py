"""Command-palette provider: every Soma action, filtered to those that apply right now."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from soma_tui._app import SomaApp

__all__ = ["SomaCommands"]

# (title, action string, help). Actions are checked with App.check_action before listing.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Pause the agent run", "pause", "Write a pause command; the agent stops between steps"),
    ("Resume the agent run", "resume", "Write a resume command"),
    ("Stop the agent run", "stop_run", "Ask the agent to finish and write its report"),
    ("Approve the pending hypothesis", "approve", "Let the agent run the experiment"),
    ("Veto the pending hypothesis", "veto", "Reject it; the agent proposes another"),
    ("Inject a hypothesis…", "inject", "Give the agent a hypothesis to test next"),
    ("Start an agent run…", "new_run", "Run `soma agent run` in the background"),
    ("Search the knowledge base", "search", "Semantic search over every experiment"),
    ("Filter experiments", "filter", "Terms, or status:/action:/verdict:/tag: filters"),
    ("Sort experiments (next column)", "sort", "Cycle the sort column of the experiments table"),
    ("Show research lines", "show_tab('lines')", "Lines with best value, trend, sparkline, chart"),
    ("Show experiments", "show_tab('experiments')", "Experiments of the selected line"),
    ("Show agent runs", "show_tab('agent')", "The watched run: state, hypothesis, decision log"),
    ("Show search", "show_tab('search')", "Semantic search"),
    ("Reload from the knowledge base", "reload", "Re-read everything now"),
)


class SomaCommands(Provider):
    """Soma's actions in the command palette (ctrl+p)."""

    def _available(self) -> Iterator[tuple[str, str, str]]:
        app: SomaApp = self.app  # type: ignore[assignment]
        for title, action, help_text in COMMANDS:
            name, _, _ = action.partition("(")
            if app.check_action(name, ()) is True:
                yield title, action, help_text

    async def discover(self) -> Hits:
        for title, action, help_text in self._available():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._available():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    text=title,
                    help=help_text,
                )
