"""Issue 17, item 2: the inject form refuses a spec the agent would refuse, with the CLI's words."""

from __future__ import annotations

from pathlib import Path

from test_tui_screens import RUN_ID, journal_a_waiting_run
from textual.widgets import Input
from tui_helpers import wait_until
from typer.testing import CliRunner

from soma.cli import _register, app
from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma.project import init_project, load_project
from soma_tui import SomaApp
from soma_tui._agent_pane import AgentPane
from soma_tui._modals import InjectHypothesisScreen

BAD_SPEC = "StandardScale() >> Svc()"


def _controls(path: Path) -> list[dict]:
    with KnowledgeBase(path, embedder=HashingEmbedder()) as kb:
        return [e.payload for e in kb.journal(RUN_ID, kinds="control")]


async def test_regression_inject_form_validates(tmp_path: Path) -> None:
    project = init_project(tmp_path / "proj", example="digits")
    kb_path = Path(load_project(project).kb_path)
    journal_a_waiting_run(kb_path)

    _register()
    result = CliRunner().invoke(
        app, ["agent", "inject", RUN_ID, "Try an SVC", "--spec", BAD_SPEC, "-p", str(project)]
    )
    assert result.exit_code != 0
    cli_message = result.output.strip().removeprefix("error:").strip()
    assert "unknown filter 'Svc'" in cli_message

    tui = SomaApp(kb_path, project_root=project, embedder=HashingEmbedder(), poll_interval=0.1)
    async with tui.run_test(size=(100, 30)) as pilot:
        pane = tui.query_one("#agent-pane", AgentPane)
        await wait_until(
            pilot, lambda: pane.state is not None and pane.state.live, what="the live run"
        )
        await pilot.press("i")
        form = tui.screen
        assert isinstance(form, InjectHypothesisScreen)
        form.query_one("#statement", Input).value = "Try an SVC"
        form.query_one("#spec", Input).value = BAD_SPEC
        await pilot.press("enter")
        await pilot.pause()
        # Still on the form, the CLI's message shown at once, the spec field focused.
        assert tui.screen is form
        shown = " ".join(str(form.query_one("#error").render()).split())
        assert shown == " ".join(cli_message.split())
        assert tui.focused is form.query_one("#spec", Input)
        # A wrong parameter name is refused the same way; a good spec then goes through.
        form.query_one("#spec", Input).value = "StandardScale() >> SVC(C=2.0)"
        form.query_one("#params", Input).value = '{"svc.Cx": 1}'
        await pilot.press("enter")
        await pilot.pause()
        assert tui.screen is form
        assert "params: unknown parameter 'svc.Cx'" in str(form.query_one("#error").render())
        form.query_one("#params", Input).value = ""
        await pilot.press("enter")
        await wait_until(pilot, lambda: tui.screen is not form, what="the form to close")
    assert _controls(kb_path) == [
        {
            "command": "inject",
            "by": "tui",
            "hypothesis": {"statement": "Try an SVC", "spec": "StandardScale() >> SVC(C=2.0)"},
        }
    ]
