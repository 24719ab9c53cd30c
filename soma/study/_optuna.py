"""What Soma needs from Optuna beyond its public surface: sampler and pruner choices,
quiet logging, a tell without a deep copy, and closing trials left running by Ctrl-C or by a
process that died."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from soma.errors import ValidationError
from soma.study._tracking import read_trial_attrs, write_trial_attrs

if TYPE_CHECKING:
    import optuna

__all__ = [
    "OWNER_ATTR",
    "PRUNERS",
    "SAMPLERS",
    "check_pruner",
    "check_sampler",
    "claim_trial",
    "close_orphans",
    "fail_on_interrupt",
    "is_interrupted",
    "make_pruner",
    "make_sampler",
    "private_tell",
    "quiet_optuna",
]

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "percentile")
OWNER_ATTR = "soma_owner"


@functools.cache
def private_tell() -> Callable[..., Any] | None:
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:  # a later Optuna moved it: fall back to the public tell
        return None
    return _tell_with_warning


def check_sampler(sampler: Any) -> Any:
    import optuna

    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValidationError(
            "sampler",
            f"expected one of {', '.join(SAMPLERS)} or an Optuna sampler, got {sampler!r}",
        )
    return sampler


def check_pruner(pruner: Any) -> Any:
    import optuna

    if pruner is None or isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if isinstance(pruner, str):
        kind, _, arg = pruner.partition(":")
        if kind == "median" and not arg:
            return ("median", 50.0)
        if kind == "percentile":
            try:
                percentile = float(arg) if arg else 25.0
            except ValueError:
                percentile = -1.0
            if 0.0 <= percentile <= 100.0:
                return ("percentile", percentile)
            raise ValidationError("pruner", f"percentile must be in [0, 100], got {arg!r}")
    raise ValidationError(
        "pruner",
        "expected 'median', 'percentile', 'percentile:P', an Optuna pruner or None, "
        f"got {pruner!r}",
    )


def make_sampler(spec: Any, seed: int | None, *, conditional: bool) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for a checked ``sampler`` argument."""
    import optuna

    if not isinstance(spec, str):
        return spec
    if spec == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # group=True lets TPE model conditional (slot) parameters per alternative.
            return optuna.samplers.TPESampler(seed=seed, group=conditional)
    # A grid is enqueued point by point (Study._plan_trials): its sampler never samples.
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: Any) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a checked ``pruner`` argument (None: never prune)."""
    import optuna

    if spec is None:
        return optuna.pruners.NopPruner()
    if not isinstance(spec, tuple):
        return spec
    kind, percentile = spec
    if kind == "median":
        return optuna.pruners.MedianPruner()
    return optuna.pruners.PercentilePruner(percentile)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; Soma reports progress itself."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def fail_on_interrupt(study: optuna.Study, trials: Any) -> Iterator[None]:
    """On Ctrl-C, close the running trials as failed so a later run does not see them
    stuck in RUNNING (and a resumed grid runs their points again)."""
    from optuna.trial import TrialState

    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, Exception):
            for trial in list(trials):
                with contextlib.suppress(Exception):
                    write_trial_attrs(
                        study,
                        trial._trial_id,
                        {"error": f"interrupted: {exc!r}", "interrupted": True},
                    )
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise


def is_interrupted(frozen: optuna.trial.FrozenTrial) -> bool:
    """A trial closed because its run was interrupted, not because its configuration failed."""
    return frozen.state.name == "FAIL" and bool(read_trial_attrs(frozen).get("interrupted"))


def _this_process() -> dict[str, Any]:
    import psutil

    # The start time tells a live process from a later one that reused the pid.
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def claim_trial(trial: optuna.Trial) -> None:
    """Mark ``trial`` as run by this process, so that if the process dies (kill -9, a
    crashed machine session) a later run on this host can close it (``close_orphans``)."""
    # A system attribute: bookkeeping, not something to show in optuna-dashboard.
    trial.study._storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, _this_process())


def _owner_is_gone(owner: Any, here: dict[str, Any]) -> bool:
    import psutil

    if not isinstance(owner, dict) or owner.get("host") != here["host"]:
        return False  # another machine's trial: it may well still be running
    pid, started = owner.get("pid"), owner.get("started")
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) > 1.0
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # exists but cannot be inspected: assume it is alive
        return False


ASKER_PREFIX = "soma_asker:"


def mark_asker(study: optuna.Study) -> None:
    """Say, before this process asks for its first trial, that it asks for trials of the
    study: a trial it created but was killed before tagging (``claim_trial``) is then known
    to be its own, and closed by a later run (``close_orphans``)."""
    here = _this_process()
    key = f"{ASKER_PREFIX}{here['host']}:{here['pid']}"
    study._storage.set_study_system_attr(study._study_id, key, {**here, "since": time.time()})


def _untagged_owner(
    frozen: optuna.trial.FrozenTrial, askers: list[dict[str, Any]], here: dict[str, Any]
) -> dict[str, Any] | None:
    """The gone process that created an untagged RUNNING trial, if one surely did: a process
    of this host that asked for trials before the trial started has ended, and no process
    still alive asked before it (or the trial is older than any tagging takes)."""
    start = frozen.datetime_start.timestamp() if frozen.datetime_start else None
    if start is None:
        return None
    before = [a for a in askers if a.get("host") == here["host"] and a["since"] <= start + 1]
    gone = [a for a in before if _owner_is_gone(a, here)]
    alive = [a for a in before if not _owner_is_gone(a, here)]
    if not gone or (alive and time.time() - start < UNTAGGED_GRACE_S):
        return None
    return max(gone, key=lambda a: a["since"])


#: Tagging follows asking within milliseconds; an untagged trial older than this is orphaned.
UNTAGGED_GRACE_S = 60.0
#: ``reconcile(frozen) -> (state, values, attrs) | None``: the outcome the knowledge base
#: already holds for an orphaned trial (then Optuna is told that outcome, not a failure).
Reconcile = Callable[[Any], tuple[str, list[float] | None, dict[str, Any]] | None]


def close_orphans(study: optuna.Study, reconcile: Reconcile | None = None) -> list[int]:
    """Close the RUNNING trials whose owning process on this host has ended; their numbers.

    An orphan whose outcome the knowledge base recorded before the kill (``reconcile``) is
    told that outcome, so Optuna and the knowledge base agree; the others fail as
    interrupted. Trials from other hosts, or with no owner to be found, are left alone:
    nothing here can tell whether they still run.
    """
    from optuna.trial import TrialState

    here = _this_process()
    askers = [
        v
        for k, v in study._storage.get_study_system_attrs(study._study_id).items()
        if k.startswith(ASKER_PREFIX) and isinstance(v, dict) and "since" in v
    ]
    closed = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = frozen.system_attrs.get(OWNER_ATTR, frozen.user_attrs.get(OWNER_ATTR))
        if owner is None:
            owner = _untagged_owner(frozen, askers, here)
        if owner is None or not _owner_is_gone(owner, here):
            continue
        known = reconcile(frozen) if reconcile is not None else None
        if known is not None:
            state, values, attrs = known
        else:
            state, values = "FAIL", None
            attrs = read_trial_attrs(frozen)
            attrs.update(
                error=f"interrupted: the process running it (pid {owner['pid']}) ended "
                "before the trial finished",
                interrupted=True,
            )
        # Optuna has no public way to set an attribute on a trial by number; a
        # constructed Trial would run the sampler's before_trial hook on it.
        with contextlib.suppress(Exception):
            write_trial_attrs(study, frozen._trial_id, attrs)
        with contextlib.suppress(Exception):  # another run may close it at the same time
            study.tell(
                frozen.number,
                values if state == "COMPLETE" else None,
                state=None if state == "COMPLETE" else TrialState[state],
                skip_if_finished=True,
            )
            closed.append(frozen.number)
    return closed
