"""``Study``: hyperparameter search over a Soma graph on Optuna (ask / tell).

Each trial samples a configuration, builds the trial's graph with ``with_filter`` /
``with_params`` (all on one shared Cache, so trials that share an upstream prefix reuse its
fitted states and outputs), fits it on the training data, runs it on the validation data
and scores the metric(s). A filter may call :func:`soma.study.report` to report
intermediate values; the pruner can stop the trial there. A trial that raises is recorded
as failed with its error and node, and the study goes on.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from soma.errors import StudyError, ValidationError
from soma.execution._faults import crash_point
from soma.execution._process import cancel_requested
from soma.experiments import EvaluationError, evaluate, experiment_params
from soma.study._inputs import (
    MetricFailed,
    as_objective_value,
    check_count,
    check_run_name,
    check_seed,
    resolve_cache,
    resolve_data,
    resolve_graph,
    resolve_metrics,
    resolve_project,
    resolve_storage,
    storage_label,
)
from soma.study._intermediate import Pruned, _TrialContext, enter_trial, find_cause, leave_trial
from soma.study._kb import StudyRecorder, reconcile_trial, record_missing
from soma.study._optuna import (
    check_pruner,
    check_sampler,
    claim_trial,
    close_orphans,
    fail_on_interrupt,
    is_interrupted,
    make_pruner,
    make_sampler,
    mark_asker,
    private_tell,
    quiet_optuna,
)
from soma.study._result import (
    StudyProgress,
    StudyResult,
    build_result,
    make_record,
)
from soma.study._space import SearchPlan, grid_point_key, plan_space
from soma.study._tracking import (
    BestTracker,
    CacheUsage,
    describe_error,
    notify,
    write_trial_attrs,
)

if TYPE_CHECKING:
    import optuna

    from soma.cache import Cache
    from soma.graph import Graph

__all__ = ["Study"]


@dataclass
class _Outcome:
    """What a trial's worker thread hands back to the main thread."""

    state: str  # "COMPLETE" | "PRUNED" | "FAIL"
    values: list[float] | None
    attrs: dict[str, Any]
    summary: str = ""
    fingerprint: str = ""
    graph_params: dict[str, Any] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    started: datetime = field(default_factory=datetime.now)
    finished: datetime | None = None


class Study:
    """A hyperparameter study over a Soma graph.

    >>> import numpy as np
    >>> from soma import Filter, search
    >>> class Shift(Filter):
    ...     offset = search(-5.0, 5.0, default=0.0)
    ...     def forward(self, x, state):
    ...         return x + self.offset
    >>> x = np.zeros(4)
    >>> study = Study(Shift(), data=(x, np.full(4, 2.0)), metric="mse", n_trials=15, seed=0,
    ...               sampler="random")
    >>> result = study.run()
    >>> result.counts["ok"], round(result.best_params["shift.offset"])
    (15, 2)

    ``graph``: a Graph, an expression (``A() >> B()``) or a zero-argument factory.
    ``data``: ``(x_train, y_train, x_valid, y_valid)`` or ``(x, y)`` (scored on the
    training data). ``metric``: a built-in name, ``fn(y_true, y_pred)``, or a list of them
    (multi-objective, with a list of directions). ``objective``: instead of data + metric,
    ``objective(graph) -> float | tuple`` gets each trial's unfitted graph.
    ``direction``: ``"maximize"``/``"minimize"`` or one per metric (None: a built-in
    metric's own, else maximize). ``sampler``: ``"tpe"``, ``"random"``, ``"grid"`` or an
    Optuna sampler. ``pruner``: ``"median"``, ``"percentile"`` (25th; ``"percentile:10"``),
    an Optuna pruner or None. ``n_trials``: trials this run adds (grid: default and upper
    bound = the grid points not run yet). ``timeout``: seconds after which no trial starts.
    ``space``: overrides of the declared search space (see ``soma.study._space``).
    ``storage``: an RDB URL, a SQLite path or an Optuna storage (default: the project's
    ``.soma/optuna.sqlite``, else memory); the same ``name`` again continues the study.
    ``cache``: shared by every trial (default: the project's ``.soma/cache``, else memory).
    ``kb``: a KnowledgeBase (or its path): every trial becomes an experiment in ``line``
    (default: the study's name). ``record_metrics``: more metrics (e.g. a project's
    ``metrics``) computed and recorded for every trial beside the objective(s).
    ``lab``: a ``soma.cluster.Lab``: each trial is evaluated on one of its workers
    (``n_jobs`` in flight; ask/tell and storage stay here; see ``soma.cluster._study``).
    ``evaluator``: ``evaluator(graph, metrics) -> Evaluation`` instead of
    ``evaluate(graph, data, metrics)`` (the tool layer evaluates in a worker process).
    """

    def __init__(
        self,
        graph: Any,
        *,
        data: Any = None,
        metric: Any = None,
        objective: Callable[[Graph], Any] | None = None,
        direction: str | Sequence[str] | None = None,
        sampler: Any = "tpe",
        pruner: Any = None,
        n_trials: int | None = None,
        timeout: float | None = None,
        seed: int | None = None,
        n_jobs: int = 1,
        name: str | None = None,
        storage: Any = None,
        kb: Any = None,
        line: str | None = None,
        space: Mapping[str, Any] | None = None,
        cache: Cache | None = None,
        project: Any = None,
        record_metrics: Sequence[Any] = (),
        lab: Any = None,
        evaluator: Callable[[Graph, list[Any]], Any] | None = None,
    ) -> None:
        self.n_trials = check_count(n_trials, "n_trials", optional=True)
        self.n_jobs = check_count(n_jobs, "n_jobs")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValidationError("timeout", f"expected seconds > 0, got {timeout!r}")
        self.timeout = timeout
        self.seed = check_seed(seed)
        self.name = check_run_name(name, "study")
        self._sampler_spec = check_sampler(sampler)
        self._pruner_spec = check_pruner(pruner)
        if objective is not None and not callable(objective):
            raise ValidationError("objective", f"expected a callable, got {objective!r}")
        if objective is not None and data is not None:
            raise ValidationError(
                "data", "an objective receives the graph and brings its own data; give one"
            )
        self.objective = objective
        self.metrics = resolve_metrics(metric, direction, objective_mode=objective is not None)
        self.directions = tuple(m.direction for m in self.metrics)
        # Computed and recorded for every trial beside the objective(s), as run_pipeline does.
        self.extra_metrics = []
        if record_metrics and objective is None:
            names = {m.name for m in self.metrics}
            extra = resolve_metrics(list(record_metrics), None, objective_mode=False)
            self.extra_metrics = [m for m in extra if m.name not in names]
        if len(self.directions) > 1 and self._pruner_spec is not None:
            raise ValidationError(
                "pruner",
                f"Optuna prunes single-objective studies only; this study has "
                f"{len(self.directions)} objectives ({', '.join(self.directions)})",
            )
        self.data = resolve_data(data) if objective is None else None
        if objective is None and data is None:
            raise ValidationError("data", "expected (x_train, y_train, x_valid, y_valid) or (x, y)")
        self._paths = resolve_project(project)
        self.lab = _check_lab(lab, self._pruner_spec)
        if evaluator is not None and not callable(evaluator):
            raise ValidationError("evaluator", f"expected a callable, got {evaluator!r}")
        self.evaluator = evaluator
        if cache is not None:
            resolve_cache(cache, None)  # type check only; folders are made last
        self.graph = resolve_graph(graph, None)
        if objective is None and len(self.graph.leaves) != 1:
            raise ValidationError(
                "graph",
                f"a metric scores one output, but the graph has {len(self.graph.leaves)} "
                f"leaves ({', '.join(self.graph.leaves)}); join them or use an objective",
            )
        self.plan: SearchPlan = plan_space(self.graph, space)
        self._grid = self.plan.grid() if self._sampler_spec == "grid" else None
        if self.n_trials is None and self.timeout is None and self._grid is None:
            raise ValidationError("n_trials", "give n_trials or a timeout (or use the grid)")
        self.line = line or self.name
        self._recorder = StudyRecorder.open(kb, self._paths, self.line, self.metrics, self.data)
        # Only now, with everything valid, create folders (storage, cache) if needed.
        self._storage = resolve_storage(storage, self._paths)
        self.cache = resolve_cache(cache, self._paths)
        self.graph.cache = self.cache

    # -- information ---------------------------------------------------------------------

    @property
    def space(self) -> dict[str, str]:
        """What is searched, by parameter, in words."""
        return self.plan.describe()

    @property
    def grid_size(self) -> int | None:
        return len(self._grid) if self._grid is not None else None

    def __repr__(self) -> str:
        return (
            f"Study({self.name!r}, {self.graph.summary()}, "
            f"{', '.join(f'{m.name} ({m.direction})' for m in self.metrics)})"
        )

    # -- running -------------------------------------------------------------------------

    def run(self, progress: Callable[[StudyProgress], Any] | None = None) -> StudyResult:
        """Run the trials; StudyError when every trial of this run failed."""
        started = time.perf_counter()
        recording = contextlib.ExitStack()
        if self._recorder is not None:
            recording.enter_context(self._recorder.session())
            # Records are written beside the trials, never inside a trial's timing.
            recording.enter_context(self._recorder.background())
        with quiet_optuna(), recording:
            study = self._open()
            planned = self._plan_trials(study)
            if self._recorder is not None:
                self._recorder.ensure_line()
            new: list[int] = []
            tracker = BestTracker(study, self.directions)
            uid = str(study.user_attrs.get("soma_uid", self.name))
            for trial, outcome in self._trials(study, planned, started):
                crash_point("trial.ran")
                record = make_record(
                    trial.number,
                    outcome.state,
                    outcome.attrs,
                    outcome.values,
                    intermediate=outcome.intermediate,
                    started=outcome.started,
                    finished=outcome.finished,
                )
                try:
                    if self._recorder is not None:
                        experiment_id = self._recorder.submit(
                            record,
                            study_name=self.name,
                            study_uid=uid,
                            summary=outcome.summary,
                            fingerprint=outcome.fingerprint,
                            graph_params=outcome.graph_params,
                            seed=self.seed,
                            tags=["study", f"study:{self.name}"],
                        )
                        outcome.attrs["experiment_id"] = experiment_id
                        record = replace(record, experiment_id=experiment_id)
                finally:
                    self._finish(study, trial, outcome)
                crash_point("trial.told")
                new.append(trial.number)
                tracker.update(record)
                if progress is not None:
                    notify(progress, StudyProgress(len(new), planned, tracker.best, record))
            recording.close()  # every experiment written before the result is built
            result = build_result(
                study,
                tuple(m.name for m in self.metrics),
                storage_label(self._storage),
                new_trials=tuple(new),
                duration_s=time.perf_counter() - started,
            )
        if new and all(result.trial(n).status == "failed" for n in new):
            errors = [result.trial(n).error for n in new]
            error = StudyError(
                f"every trial of study {self.name!r} failed ({len(new)}); first error: {errors[0]}"
            )
            error.result = result  # type: ignore[attr-defined]
            raise error
        return result

    def _open(self) -> optuna.Study:
        import optuna

        directions = list(self.directions)
        sampler = make_sampler(self._sampler_spec, self.seed, conditional=bool(self.plan.slots))
        pruner = make_pruner(self._pruner_spec)
        study = optuna.create_study(
            storage=self._storage,
            sampler=sampler,
            pruner=pruner,
            study_name=self.name,
            directions=directions,
            load_if_exists=True,
        )
        if self.seed is not None and isinstance(self._sampler_spec, str):
            done = len(study.get_trials(deepcopy=False))
            if done:
                # Continuing a seeded study: the same seed would replay the first trials'
                # parameters. Offset it by the trials already stored, so a continued study
                # explores new points and stays reproducible.
                study.sampler = make_sampler(
                    self._sampler_spec, self.seed + done, conditional=bool(self.plan.slots)
                )
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise StudyError(
                f"study {self.name!r} already exists with direction(s) {stored}; "
                f"this run asks for {directions} (use another name)"
            )
        names = [m.name for m in self.metrics]
        known = study.user_attrs.get("soma_metrics")
        if known is None:
            study.set_user_attr("soma_metrics", names)
            study.set_user_attr("soma_uid", secrets.token_hex(8))
            study.set_user_attr("soma_graph", self.graph.summary())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(names)  # shown by optuna-dashboard
        elif list(known) != names:
            raise StudyError(
                f"study {self.name!r} already exists with metric(s) {list(known)}; "
                f"this run asks for {names} (use another name)"
            )
        if self._persistent:
            # Trials a killed run left RUNNING: closed as interrupted (or with the outcome the
            # knowledge base recorded before the kill), so the result does not show them
            # running forever, a resumed grid runs their points again, and Optuna and the
            # knowledge base agree; then trials told but not yet recorded are recorded.
            recorder = self._recorder
            close_orphans(study, None if recorder is None else functools.partial(
                reconcile_trial, recorder, study, self.metrics))  # fmt: skip
            if recorder is not None:
                record_missing(recorder, study, self.seed)
            mark_asker(study)
        return study

    def _plan_trials(self, study: optuna.Study) -> int | None:
        """How many trials this run makes; for a grid, enqueue the points not run yet."""
        if self._grid is None:
            return self.n_trials
        from optuna.trial import TrialState

        seen: set[str] = set()
        waiting = 0
        for frozen in study.get_trials(deepcopy=False):
            if frozen.state == TrialState.WAITING:
                waiting += 1
                seen.add(grid_point_key(frozen.system_attrs.get("fixed_params", {})))
            elif not is_interrupted(frozen):  # an interrupted point was never really run
                seen.add(grid_point_key(frozen.params))
        todo = [p for p in self._grid if grid_point_key(p) not in seen]
        available = waiting + len(todo)
        planned = available if self.n_trials is None else min(self.n_trials, available)
        for point in todo[: max(0, planned - waiting)]:
            study.enqueue_trial(point)
        return planned

    def _trials(
        self, study: optuna.Study, planned: int | None, started: float
    ) -> Iterator[tuple[optuna.Trial, _Outcome]]:
        deadline = started + self.timeout if self.timeout is not None else None
        launched = 0

        def more() -> bool:
            if planned is not None and launched >= planned:
                return False
            if cancel_requested():  # an MCP cancel: no trial starts after it
                return False
            return deadline is None or launched == 0 or time.perf_counter() < deadline

        if self.n_jobs == 1:
            while more():
                trial = self._ask(study)
                launched += 1
                with fail_on_interrupt(study, [trial]):
                    outcome = self._run_trial(trial)
                yield trial, outcome
            return
        in_flight: dict[Future[_Outcome], optuna.Trial] = {}
        pool = ThreadPoolExecutor(self.n_jobs, thread_name_prefix="soma-trial")
        with pool, fail_on_interrupt(study, in_flight.values()):
            while True:
                while len(in_flight) < self.n_jobs and more():
                    trial = self._ask(study)
                    launched += 1
                    in_flight[pool.submit(self._run_trial, trial)] = trial
                if not in_flight:
                    break
                finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: in_flight[f].number):
                    yield in_flight.pop(future), future.result()

    def _ask(self, study: optuna.Study) -> optuna.Trial:
        trial = study.ask()
        crash_point("trial.asked")
        if self._persistent:
            with fail_on_interrupt(study, [trial]):
                claim_trial(trial)
        crash_point("trial.tagged")
        return trial

    @property
    def _persistent(self) -> bool:
        """Whether the trials outlive this process (only then can a later run find them)."""
        import optuna

        return self._storage is not None and not isinstance(
            self._storage, optuna.storages.InMemoryStorage
        )

    def _run_trial(self, trial: optuna.Trial) -> _Outcome:
        t0 = time.perf_counter()
        attrs: dict[str, Any] = {}
        usage = CacheUsage()
        try:
            assignment = self.plan.sample(trial)
        except Exception as exc:
            attrs.update(error=f"sampling failed: {type(exc).__name__}: {exc}", duration_s=0.0)
            return _Outcome("FAIL", None, attrs, finished=datetime.now())
        attrs["params"] = assignment.params
        ctx = _TrialContext(trial, self.name, assignment.params, len(self.directions) == 1)
        token = enter_trial(ctx)
        outcome = _Outcome("FAIL", None, attrs)
        try:
            graph = self.plan.build(self.graph, assignment)
            if self._recorder is not None:  # only the knowledge base needs these
                outcome.summary = graph.summary()
                outcome.fingerprint = graph.fingerprint()
                outcome.graph_params = experiment_params(graph)  # + strategy.*
            if self.objective is not None:  # the objective runs the graph: listen in
                graph.on_event(usage.on_event)
            values, attrs["metrics"] = self._evaluate(graph, usage)
            outcome.state, outcome.values = "COMPLETE", values
        except Exception as exc:
            pruned = find_cause(exc, Pruned)
            if isinstance(pruned, Pruned):
                outcome.state = "PRUNED"
                attrs["pruned_step"] = pruned.step
            else:
                attrs["error"], attrs["node"] = describe_error(exc)
        finally:
            leave_trial(token)
        outcome.intermediate = dict(ctx.intermediate)
        if ctx.intermediate and len(self.directions) > 1:  # Optuna keeps them otherwise
            attrs["intermediate"] = {str(k): v for k, v in sorted(ctx.intermediate.items())}
        if self.lab is not None:
            from soma.cluster._study import last_worker

            attrs["worker"] = last_worker()
        attrs.update(usage.as_attrs(), duration_s=time.perf_counter() - t0)
        outcome.finished = datetime.now()
        return outcome

    def _evaluate(self, graph: Graph, usage: CacheUsage) -> tuple[list[float], dict[str, float]]:
        """The objective values, and every metric computed by name."""
        if self.objective is not None:
            raw = self._remote("objective", graph) if self.lab else self.objective(graph)
            values = list(raw) if isinstance(raw, list | tuple) else [raw]
            if len(values) != len(self.metrics):
                raise MetricFailed(
                    "objective",
                    f"objective returned {len(values)} value(s), expected {len(self.metrics)}",
                )
            values = [as_objective_value(v, "objective") for v in values]
            return values, {m.name: v for m, v in zip(self.metrics, values, strict=True)}
        assert self.data is not None
        # Run reports instead of events: a graph without listeners emits nothing.
        try:
            metrics = [*self.metrics, *self.extra_metrics]
            if self.lab is not None:
                evaluation = self._remote("evaluate", graph, metrics)
            elif self.evaluator is not None:
                evaluation = self.evaluator(graph, metrics)
            else:
                evaluation = evaluate(graph, self.data, metrics)
        except EvaluationError as exc:
            for report in exc.reports:
                usage.add_report(report)
            # The trial records the node's or the metric's own error, as it is.
            raise exc.cause from exc.cause.__cause__
        for report in evaluation.reports:
            usage.add_report(report)
        return [evaluation.metrics[m.name] for m in self.metrics], dict(evaluation.metrics)

    def _remote(self, kind: str, graph: Graph, metrics: Any = None) -> Any:
        """The trial's evaluation (or objective) as a job on a worker of ``self.lab``."""
        from soma.cluster._study import evaluate_remote, objective_remote
        from soma.study._intermediate import current_trial

        info = current_trial()
        what = f"trial {info.number if info else '?'} of study {self.name!r}"
        if kind == "objective":
            return objective_remote(self.lab, self.objective, graph, what)
        return evaluate_remote(self.lab, graph, self.data, metrics, what)

    def _finish(self, study: optuna.Study, trial: optuna.Trial, outcome: _Outcome) -> None:
        from optuna.trial import TrialState

        write_trial_attrs(study, trial._trial_id, outcome.attrs)
        values = outcome.values if outcome.state == "COMPLETE" else None
        state = None if outcome.state == "COMPLETE" else TrialState[outcome.state]
        tell = private_tell()
        if tell is None:
            study.tell(trial, values, state=state)
        else:  # what Study.optimize calls: tell() would also deep-copy the finished trial
            tell(study, trial, values, state)


def _check_lab(lab: Any, pruner: Any) -> Any:
    if lab is None:
        return None
    from soma.cluster.lab import Lab

    if not isinstance(lab, Lab):
        raise ValidationError("lab", f"expected a soma.cluster.Lab or None, got {lab!r}")
    if pruner is not None:
        raise ValidationError(
            "pruner",
            "trials on a cluster run on workers, where soma.study.report cannot reach the "
            "pruner: give pruner=None with lab=",
        )
    return lab
