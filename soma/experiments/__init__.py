"""The core use case: spec -> graph -> fit -> forward -> score -> record.

Every face (the tool layer behind MCP and the agent, the CLI, ``Study``, PBT, and later a
remote worker) runs an experiment through these pieces instead of writing its own:

* :func:`build_graph` — a project's pipeline spec + ``params`` + ``seed`` -> ``Graph``;
  a ValidationError names the failing field (``spec``, ``params``, ``seed``,
  ``strategy``); :func:`experiment_params` is what the experiment records as params.
* :class:`Splits` — train / valid (/ test) data, with the one :func:`data_fingerprint`.
* :class:`MetricSpec` — a metric, its direction, and a checked ``score``.
* :func:`evaluate` — fit on train, forward and score on valid -> :class:`Evaluation`
  (scores, cache use, the validation predictions for paired comparisons); failures are
  an :class:`EvaluationError` naming the stage.
* :class:`ExperimentRun` — the knowledge-base record: running -> ok / failed / pruned,
  idempotent replay by key; :func:`record_finished` for runs recorded at the end.

A new face plugs in by calling these in that order; nothing here imports a face.
"""

from __future__ import annotations

from soma.experiments._build import SEED_PARAMS, build_graph, experiment_params, jsonable_value
from soma.experiments._evaluate import (
    STAGES,
    Evaluation,
    EvaluationError,
    cache_keys,
    evaluate,
)
from soma.experiments._lifecycle import FINAL_STATUSES, ExperimentRun, record_finished
from soma.experiments._metrics import DIRECTIONS, MetricFailed, MetricSpec, as_objective_value
from soma.experiments._splits import Splits, coerce_splits, data_fingerprint, splits_from_data

__all__ = [
    "DIRECTIONS",
    "FINAL_STATUSES",
    "SEED_PARAMS",
    "STAGES",
    "Evaluation",
    "EvaluationError",
    "ExperimentRun",
    "MetricFailed",
    "MetricSpec",
    "Splits",
    "as_objective_value",
    "build_graph",
    "cache_keys",
    "coerce_splits",
    "data_fingerprint",
    "evaluate",
    "experiment_params",
    "jsonable_value",
    "record_finished",
    "splits_from_data",
]
