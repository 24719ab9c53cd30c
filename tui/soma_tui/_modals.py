"""Modal forms: inject a hypothesis, start an agent run, confirm a stop."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

__all__ = ["ConfirmScreen", "InjectHypothesisScreen", "StartRunScreen", "parse_params"]

_MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%;
    border: thick $primary; background: $surface; padding: 0 1;
}}
{name} Label {{ margin-top: 1; color: $text-muted; }}
{name} Input {{ margin: 0; background: $boost; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 1; min-width: 10; }}
"""


def parse_params(text: str) -> dict[str, Any]:
    """Parse the params field: empty, or a JSON object such as ``{"ridge.alpha": 0.1}``.

    >>> parse_params('{"pca.n_components": 8}')
    {'pca.n_components': 8}
    >>> parse_params("")
    {}
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"params: expected a JSON object, got invalid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"params: expected a JSON object, got {type(value).__name__}")
    return value


class _FormScreen(ModalScreen[dict[str, Any] | None]):
    """A titled form: labelled compact inputs, an error line, Cancel and a submit button.

    Subclasses set ``TITLE_MARKUP``/``SUBMIT_LABEL``, yield their fields in :meth:`fields` and
    turn them into a result in :meth:`collect` (raise ``ValueError("field: why")`` to refuse).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    SUBMIT_LABEL = "OK"

    def title_markup(self) -> str:
        raise NotImplementedError

    def fields(self) -> ComposeResult:
        raise NotImplementedError

    def collect(self) -> dict[str, Any]:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_markup())
            yield from self.fields()
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(self.SUBMIT_LABEL, variant="primary", id="submit", compact=True)

    def value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        try:
            result = self.collect()
        except ValueError as exc:
            self.query_one("#error", Static).update(str(exc))
            field = str(exc).split(":", 1)[0].replace(" ", "_")
            if self.query(f"#{field}"):
                self.query_one(f"#{field}").focus()
            return
        self.dismiss(result)


def _required(form: _FormScreen, field: str) -> str:
    value = form.value(field)
    if not value:
        raise ValueError(f"{field}: required, got an empty field")
    return value


class InjectHypothesisScreen(_FormScreen):
    """Form for a hypothesis the agent should test next; dismisses with the payload or None."""

    DEFAULT_CSS = _MODAL_CSS.format(name="InjectHypothesisScreen")
    SUBMIT_LABEL = "Inject"

    def __init__(
        self, run_id: str, validate: Callable[[dict[str, Any]], str] | None = None
    ) -> None:
        super().__init__()
        self.run_id = run_id
        # Returns '' or "field: why" (the message `soma agent inject` prints for the same
        # spec): a spec the agent would refuse is refused here, before anything is queued.
        self.validate = validate

    def title_markup(self) -> str:
        return f"[b]Inject a hypothesis[/b] into {self.run_id}"

    def fields(self) -> ComposeResult:
        yield Label("statement (what you expect and why)")
        yield Input(
            placeholder="Standardising before PCA raises accuracy", id="statement", compact=True
        )
        yield Label("pipeline spec")
        yield Input(
            placeholder="StandardScale() >> PCA(n_components=16) >> LogReg()",
            id="spec",
            compact=True,
        )
        yield Label("params (JSON object, optional)")
        yield Input(placeholder='{"log_reg.C": 0.5}', id="params", compact=True)
        yield Label("rationale (optional)")
        yield Input(id="rationale", compact=True)
        yield Label("tune: trials of a study instead of one run (optional, 1-50)")
        yield Input(placeholder="e.g. 10", id="tune", type="integer", compact=True)

    def collect(self) -> dict[str, Any]:
        hypothesis: dict[str, Any] = {
            "statement": _required(self, "statement"),
            "spec": _required(self, "spec"),
        }
        params = parse_params(self.value("params"))
        if params:
            hypothesis["params"] = params
        if self.value("rationale"):
            hypothesis["rationale"] = self.value("rationale")
        tune = self.value("tune")
        if tune:
            if not tune.isdigit() or not 1 <= int(tune) <= 50:
                raise ValueError(f"tune: expected an integer from 1 to 50, got {tune!r}")
            hypothesis["action"], hypothesis["n_trials"] = "tune", int(tune)
        if self.validate is not None:
            error = self.validate(hypothesis)
            if error:
                raise ValueError(error)
        return hypothesis


class StartRunScreen(_FormScreen):
    """Form to start ``soma agent run`` in the background; dismisses with its options."""

    DEFAULT_CSS = _MODAL_CSS.format(name="StartRunScreen")
    SUBMIT_LABEL = "Start"

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project

    def title_markup(self) -> str:
        return f"[b]Start an agent run[/b] in {self.project}"

    def fields(self) -> ComposeResult:
        yield Label("goal")
        yield Input(
            placeholder="Find the best preprocessing for the digits data", id="goal", compact=True
        )
        yield Label("max experiments")
        yield Input("10", id="max_experiments", type="integer", compact=True)
        yield Label("planner (optional)")
        yield Input(
            placeholder="soma.toml's; or builtin, anthropic:MODEL, openai:MODEL",
            id="planner",
            compact=True,
        )
        yield Checkbox("ask me to approve each hypothesis", id="approve")

    def collect(self) -> dict[str, Any]:
        goal = _required(self, "goal")
        raw_max = self.value("max_experiments")
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise ValueError(f"max experiments: expected an integer >= 1, got {raw_max!r}")
        return {
            "goal": goal,
            "max_experiments": int(raw_max),
            "approve": self.query_one("#approve", Checkbox).value,
            "planner": self.value("planner") or None,
        }


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no question; dismisses with True on yes."""

    DEFAULT_CSS = _MODAL_CSS.format(name="ConfirmScreen")
    BINDINGS = [Binding("escape", "no", "No"), Binding("y", "yes", "Yes"), Binding("n", "no", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            with Horizontal():
                yield Button("No", id="no", compact=True)
                yield Button("Yes", variant="error", id="yes", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)
