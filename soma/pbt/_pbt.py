"""Population-Based Training over a graph whose last node trains in steps.

Everything upstream of the iterative node is fitted once (through the runtime and its
cache); then each round every member trains ``steps`` more steps from its own checkpoint
and is scored on the validation data, also through the runtime
(``soma.experiments.evaluate`` of the node alone, see ``_workers``: cache, events,
ExecutionError). Between rounds the bottom ``fraction`` copies the state and
hyperparameters of a member drawn from the top ``fraction`` (exploit; or, with
``exploit="binary_tournament"``, each member that loses to a random rival copies it) and moves
its hyperparameters (explore: x0.8 / x1.2, or a fresh draw with ``resample_probability``,
always inside the declared bounds). Members run in a local process pool.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from soma.errors import StudyError, ValidationError
from soma.filter import Filter
from soma.pbt._explore import binary_tournament, explore, sample_value, truncation
from soma.pbt._result import (
    LineageEvent,
    Member,
    PBTProgress,
    PBTResult,
    RoundSummary,
    ScheduleStep,
)
from soma.pbt._setup import check_factors, check_fraction, find_node, node_space
from soma.pbt._workers import MemberContext, MemberExecutor
from soma.study._inputs import (
    check_count,
    check_run_name,
    check_seed,
    resolve_cache,
    resolve_data,
    resolve_graph,
    resolve_metrics,
    resolve_project,
)
from soma.study._kb import StudyRecorder
from soma.study._result import TrialRecord, params_text
from soma.vocabulary import Direction

if TYPE_CHECKING:
    from soma.cache import Cache

__all__ = ["PBT"]

_log = logging.getLogger("soma.pbt")


class _PassThrough(Filter):
    """Stands in for the iterative node to collect its inputs from the rest of the graph."""

    def forward(self, x: Any, state: Any) -> Any:
        return x


@dataclass
class _Live:
    id: int
    params: dict[str, Any]  # "node.param" -> value
    state: Any = None
    fresh: bool = True
    score: float | None = None
    error: str | None = None
    failure: BaseException | None = None  # the error behind ``error`` (ExecutionError, ...)
    history: list[ScheduleStep] = field(default_factory=list)
    train_s: float = 0.0


class PBT:
    """Population-Based Training of a graph's iterative node.

    >>> import numpy as np
    >>> from soma import search
    >>> from soma.pbt import IterativeFilter
    >>> class Mean(IterativeFilter):
    ...     lr = search(0.01, 1.0, log=True, default=0.1)
    ...     def init_state(self, x, y=None):
    ...         return 0.0
    ...     def partial_fit(self, x, y, state, steps):
    ...         for _ in range(steps):
    ...             state += self.lr * (float(np.mean(y)) - state)
    ...         return state
    ...     def forward(self, x, state):
    ...         return np.full(len(x), state)
    >>> x, y = np.zeros(5), np.full(5, 3.0)
    >>> result = PBT(Mean(), data=(x, y), metric="mse", population=4, rounds=5, seed=0).run()
    >>> len(result.population), result.best_value < 1.0
    (4, True)

    ``graph``: a Graph, expression or zero-argument factory whose ``node`` (default: the
    one iterative node) is a leaf following the step protocol (``soma.pbt.IterativeFilter``).
    ``space``: the node's hyperparameters to explore (default: its declared search spaces);
    ``"node.param": SearchSpace | [choices] | value``. ``workers``: processes (1: in this
    process). ``lab``: a ``soma.cluster.Lab``: members train in actors on its workers
    (``soma.pbt._actors``). Other arguments as in ``soma.study.Study``.
    """

    def __init__(
        self,
        graph: Any,
        *,
        data: Any,
        metric: Any,
        direction: str | None = None,
        population: int = 8,
        rounds: int = 10,
        steps: int = 1,
        node: str | None = None,
        space: Mapping[str, Any] | None = None,
        fraction: float = 0.25,
        exploit: str = "truncation",
        resample_probability: float = 0.25,
        perturb_factors: Sequence[float] = (0.8, 1.2),
        seed: int | None = None,
        workers: int = 1,
        name: str | None = None,
        kb: Any = None,
        line: str | None = None,
        cache: Cache | None = None,
        project: Any = None,
        lab: Any = None,
    ) -> None:
        self.population = check_count(population, "population", minimum=2)
        self.lab = _check_lab(lab)
        self.rounds = check_count(rounds, "rounds")
        self.steps = check_count(steps, "steps")
        self.workers = check_count(workers, "workers")
        self.fraction = check_fraction(fraction, "fraction", 0.0, 0.5, low_open=True)
        if exploit not in ("truncation", "binary_tournament"):
            raise ValidationError(
                "exploit", f"expected 'truncation' or 'binary_tournament', got {exploit!r}"
            )
        self.exploit = exploit
        self.resample_probability = check_fraction(
            resample_probability, "resample_probability", 0.0, 1.0
        )
        self.perturb_factors = check_factors(perturb_factors)
        self.seed = check_seed(seed)
        self.name = check_run_name(name, "pbt")
        metrics = resolve_metrics(metric, direction, objective_mode=False)
        if len(metrics) != 1:
            raise ValidationError("metric", f"PBT ranks members by one metric, got {len(metrics)}")
        self.metric = metrics[0]
        self.data = resolve_data(data)
        paths = resolve_project(project)
        if cache is not None:
            resolve_cache(cache, None)  # type check only; folders are made last
        self.graph = resolve_graph(graph, None)
        self.node = find_node(self.graph, node)
        self.space, fixed = node_space(self.graph, self.node, space)
        self.line = line or self.name
        self._recorder = StudyRecorder.open(kb, paths, self.line, metrics, self.data)
        self.graph.cache = resolve_cache(cache, paths)
        self._base = self.graph.with_params(fixed)  # a copy: keeps the cache

    def __repr__(self) -> str:
        return (
            f"PBT({self.name!r}, node={self.node!r}, population={self.population}, "
            f"rounds={self.rounds}, steps={self.steps})"
        )

    # -- running -------------------------------------------------------------------------

    def run(self, progress: Callable[[PBTProgress], Any] | None = None) -> PBTResult:
        """Train the population; StudyError when a round has no successful evaluation."""
        started, started_at = time.perf_counter(), datetime.now()
        context = self._context()
        rng = np.random.default_rng(self.seed)
        members = [
            _Live(i, {k: sample_value(s, rng) for k, s in sorted(self.space.items())})
            for i in range(self.population)
        ]
        initial = tuple(dict(m.params) for m in members)
        base_filter = self._base.nodes[self.node]
        lineage: list[LineageEvent] = []
        summaries: list[RoundSummary] = []
        if self.lab is not None:
            from soma.pbt._actors import ActorMemberExecutor

            executor: Any = ActorMemberExecutor(context, self.lab, base_filter, self.population)
        else:
            executor = MemberExecutor(context, self.workers, base_filter)
        try:
            for round_no in range(self.rounds):
                t0 = time.perf_counter()
                for m in members:
                    m.history.append(ScheduleStep(round_no, dict(m.params)))
                tasks = [(self._filter(base_filter, m.params), m.state, m.fresh) for m in members]
                outcomes = executor.run(tasks, self.steps)
                for m, outcome in zip(members, outcomes, strict=True):
                    m.state, m.score, m.error = outcome.state, outcome.score, outcome.error
                    m.failure = outcome.failure
                    m.fresh, m.train_s = False, m.train_s + outcome.duration_s
                scores = {m.id: m.score for m in members}
                if all(s is None for s in scores.values()):
                    errors = "; ".join(f"member {m.id}: {m.error}" for m in members[:3])
                    raise StudyError(
                        f"PBT {self.name!r} round {round_no}: every evaluation failed ({errors})"
                    ) from members[0].failure  # e.g. the ExecutionError naming the node
                replaced = 0
                if round_no < self.rounds - 1:
                    replaced = self._exploit_explore(members, scores, round_no, rng, lineage)
                    for m in members:
                        if m.state is None:  # failed and nobody valid to copy: start over
                            m.fresh = True
                summary = _round_summary(
                    round_no, scores, self.metric.direction, replaced, time.perf_counter() - t0
                )
                summaries.append(summary)
                if progress is not None:
                    try:
                        progress(PBTProgress(round_no, self.rounds, summary))
                    except Exception:
                        _log.exception("PBT progress callback raised; ignored")
        finally:
            executor.close()
        result = self._result(members, lineage, summaries, executor, started, started_at)
        return replace(result, initial_params=initial)

    def _context(self) -> MemberContext:
        """The iterative node's inputs on the training and validation data."""
        probe = self._base.with_filter(self.node, _PassThrough())
        d = self.data
        try:
            train_in = probe.fit_forward(d.x_train, d.y_train)
            valid_in = probe.forward(d.x_valid) if d.has_valid else train_in
        except Exception as exc:
            raise StudyError(
                f"PBT {self.name!r}: the graph upstream of {self.node!r} failed: {exc}"
            ) from exc
        if len(probe.leaves) > 1:
            train_in, valid_in = train_in[self.node], valid_in[self.node]
        cache = self._base.cache
        context = MemberContext(
            self.node,
            train_in,
            d.y_train,
            valid_in,
            d.y_valid,
            self.metric,
            cache_path=getattr(cache, "path", None),
            cache_memory_items=getattr(cache, "memory_items", 256),
        )
        # Members fit through the executor on the PBT's own cache (worker processes open
        # theirs on the same folder).
        context.open_cache(cache)
        return context

    def _filter(self, base: Filter, params: dict[str, Any]) -> Filter:
        return base.with_params(**{k.split(".", 1)[1]: v for k, v in params.items()})

    def _exploit_explore(
        self,
        members: list[_Live],
        scores: dict[int, float | None],
        round_no: int,
        rng: np.random.Generator,
        lineage: list[LineageEvent],
    ) -> int:
        by_id = {m.id: m for m in members}
        if self.exploit == "binary_tournament":
            pairs = sorted(binary_tournament(scores, self.metric.direction, rng).items())
        else:
            bottom, top = truncation(scores, self.metric.direction, self.fraction)
            pairs = [(m, None) for m in bottom]  # donors drawn in turn (seeded sequence)
        for member_id, donor_id in pairs:
            member = by_id[member_id]
            if donor_id is None:
                donor_id = top[int(rng.integers(len(top)))]
            donor = by_id[donor_id]
            assert donor.score is not None and donor.state is not None  # a valid checkpoint
            params_after = explore(
                donor.params,
                self.space,
                rng,
                resample_probability=self.resample_probability,
                factors=self.perturb_factors,
            )
            lineage.append(
                LineageEvent(
                    round_no,
                    member.id,
                    donor.id,
                    donor.score,
                    member.score,
                    dict(donor.params),
                    params_after,
                )
            )
            member.state = copy.deepcopy(donor.state)
            member.score, member.error = donor.score, None
            member.history = [ScheduleStep(s.round, dict(s.params)) for s in donor.history]
            member.params = params_after
        return len(pairs)

    def _result(
        self,
        members: list[_Live],
        lineage: list[LineageEvent],
        summaries: list[RoundSummary],
        executor: MemberExecutor,
        started: float,
        started_at: datetime,
    ) -> PBTResult:
        sign = -Direction(self.metric.direction).sign  # best first
        ranked = sorted(members, key=lambda m: (m.score is None, sign * (m.score or 0.0), m.id))
        ids: dict[int, str] = {}
        if self._recorder is not None:
            with self._recorder.session():
                ids = self._record(ranked, lineage, started_at)
        population = tuple(
            Member(m.id, dict(m.params), m.score, tuple(m.history), m.error, m.state, ids.get(m.id))
            for m in ranked
        )
        return PBTResult(
            name=self.name,
            metric=self.metric.name,
            direction=self.metric.direction,
            node=self.node,
            population=population,
            lineage=tuple(lineage),
            rounds=tuple(summaries),
            duration_s=time.perf_counter() - started,
            workers=self.workers,
            parallel=executor.parallel,
            fallback_reason=executor.fallback_reason,
        )

    def _record(
        self, ranked: list[_Live], lineage: list[LineageEvent], started_at: datetime
    ) -> dict[int, str]:
        assert self._recorder is not None
        self._recorder.ensure_line("created by a Soma PBT run")
        uid = secrets.token_hex(8)
        finished = datetime.now()
        ids = {}
        for rank, m in enumerate(ranked):
            record = TrialRecord(
                number=m.id,
                status="ok" if m.score is not None else "failed",
                params=dict(m.params),
                values=(m.score,) if m.score is not None else None,
                metrics={self.metric.name: m.score} if m.score is not None else {},
                error=m.error,
                duration_s=m.train_s,
                started=started_at,
                finished=finished,
            )
            schedule = "; ".join(f"round {s.round}: {params_text(s.params)}" for s in m.history)
            copies = [e for e in lineage if e.member == m.id]
            notes = f"PBT schedule: {schedule}" + "".join(
                f"\nround {e.round}: copied member {e.donor}" for e in copies
            )
            graph = self._base.with_params(m.params)
            ids[m.id] = self._recorder.record(
                record,
                study_name=self.name,
                study_uid=uid,
                summary=graph.summary(),
                fingerprint=graph.fingerprint(),
                graph_params=graph.params,
                seed=self.seed,
                tags=["pbt", f"pbt:{self.name}", *(["best"] if rank == 0 else [])],
                origin_key=f"pbt:{uid}:{m.id}",
                notes=notes,
            )
        return ids


def _round_summary(
    round_no: int,
    scores: dict[int, float | None],
    direction: str,
    replaced: int,
    duration: float,
) -> RoundSummary:
    valid = [s for s in scores.values() if s is not None]
    return RoundSummary(
        round_no,
        best=Direction(direction).best(valid) if valid else None,
        mean=sum(valid) / len(valid) if valid else None,
        failed=len(scores) - len(valid),
        replaced=replaced,
        duration_s=duration,
    )


def _check_lab(lab: Any) -> Any:
    if lab is None:
        return None
    from soma.cluster.lab import Lab

    if not isinstance(lab, Lab):
        raise ValidationError("lab", f"expected a soma.cluster.Lab or None, got {lab!r}")
    return lab
