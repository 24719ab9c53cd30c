"""Intermediate values: how a filter tells the running trial how it is doing.

A study sets a context variable holding the current trial before it runs the graph; the
runtime copies context variables into its worker threads, so ``report`` works in any node.
Outside a study ``report`` does nothing, which lets the same filter run in a plain graph:

>>> from soma.study import report
>>> report(0.5, step=0)  # no trial is running: a no-op
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from soma.errors import SomaError, ValidationError, error_chain

if TYPE_CHECKING:
    import optuna

__all__ = ["Pruned", "TrialInfo", "current_trial", "report"]


class Pruned(SomaError):
    """Raised by :func:`report` when the study's pruner stops the trial.

    It is a signal, not a failure: the study records the trial as pruned. Let it
    propagate out of ``fit``/``forward`` (the runtime wraps it in an ExecutionError,
    which the study unwraps).
    """

    def __init__(self, step: int, value: float) -> None:
        self.step = step
        self.value = value
        super().__init__(f"trial pruned at step {step} (intermediate value {value:g})")

    def __reduce__(self) -> tuple[type[Pruned], tuple[int, float]]:
        # A trial evaluated in a worker process is pruned there: the signal travels back.
        return (type(self), (self.step, self.value))


@dataclass
class _TrialContext:
    trial: optuna.Trial
    study_name: str
    params: dict[str, Any]
    single_objective: bool  # Optuna takes intermediate values (and prunes) only then
    intermediate: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class TrialInfo:
    """What a filter may know about the trial it runs in."""

    study_name: str
    number: int
    params: dict[str, Any]


_CURRENT: contextvars.ContextVar[_TrialContext | None] = contextvars.ContextVar(
    "soma_study_trial", default=None
)


def current_trial() -> TrialInfo | None:
    """The trial the calling code runs in, or None outside a study."""
    ctx = _CURRENT.get()
    if ctx is None:
        return None
    return TrialInfo(ctx.study_name, ctx.trial.number, dict(ctx.params))


def report(value: float, step: int) -> None:
    """Report the running trial's intermediate objective ``value`` at ``step`` (0, 1, ...).

    Raises :class:`Pruned` when the study's pruner decides the trial is not worth
    finishing. Outside a study this does nothing. In a multi-objective study (which
    Optuna cannot prune) the value is kept in the trial's record only.
    """
    ctx = _CURRENT.get()
    if ctx is None:
        return
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValidationError("step", f"expected an int >= 0, got {step!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError("value", f"expected a number, got {value!r}") from None
    if math.isnan(number):
        raise ValidationError("value", "expected a number, got NaN")
    with ctx.lock:
        ctx.intermediate[step] = number
        if not ctx.single_objective:
            return
        ctx.trial.report(number, step)
        prune = ctx.trial.should_prune()
    if prune:
        raise Pruned(step, number)


class _RelayTrial:
    """The study's trial as seen from a worker process: reports go to the parent's pruner."""

    def __init__(self, number: int) -> None:
        self.number = number
        self._prune = False

    def report(self, value: float, step: int) -> None:
        from soma.execution._worker import ask

        self._prune = bool(ask(("report", value, step)))

    def should_prune(self) -> bool:
        return self._prune


def relay() -> tuple[Any, Any] | None:
    """For an evaluation sent to a worker process from the running trial (None outside a
    trial): ``(around, on_ask)`` for ``evaluate_isolated``, so that ``report`` in a filter
    there reaches this trial's pruner."""
    ctx = _CURRENT.get()
    if ctx is None:
        return None
    info = (ctx.study_name, ctx.trial.number, dict(ctx.params), ctx.single_objective)
    return functools.partial(_relayed, info), _answer_report


@contextlib.contextmanager
def _relayed(info: tuple[str, int, dict[str, Any], bool]) -> Iterator[None]:
    name, number, params, single = info
    token = enter_trial(_TrialContext(_RelayTrial(number), name, params, single))  # type: ignore[arg-type]
    try:
        yield
    finally:
        leave_trial(token)


def _answer_report(question: Any) -> bool:
    """In the parent: a worker's ``report``, made here; True when the trial is pruned."""
    _, value, step = question
    try:
        report(value, step)
    except Pruned:
        return True
    return False


def enter_trial(ctx: _TrialContext) -> contextvars.Token[_TrialContext | None]:
    return _CURRENT.set(ctx)


def leave_trial(token: contextvars.Token[_TrialContext | None]) -> None:
    _CURRENT.reset(token)


def find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in ``exc``'s chain (runtime wrappers included)."""
    return next((e for e in error_chain(exc) if isinstance(e, kind)), None)
