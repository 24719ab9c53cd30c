"""Training strategies: how a node's ``fit`` is carried out.

The node runner never calls ``filter.fit`` itself: it builds a :class:`FitCall` (the node,
its filter, its inputs and labels, and how ``fit`` takes them) and hands it to the graph's
strategy (``Graph(strategy=...)`` or ``graph.with_strategy(...)``):

* :class:`Local` (the default) calls ``fit`` here, once.
* :class:`DataParallel` shards x and y over worker processes, each replica updates on its
  rows, the updates are combined weighted by shard size, for the filter's epochs.
* :class:`Federated` fits clients on their own shards for ``rounds``; only states travel.
* :class:`ModelParallel` places stages of the graph on worker processes and pipelines
  micro-batches through them.
* :class:`PopulationBased` trains the node with today's PBT (``soma.pbt``).

Strategies are typed pydantic models: validated (errors name the field), serialisable
(``model_dump`` / ``parse_strategy``), part of the fitted state's cache key and of the
experiment record. The distributed ones need the filter protocol of
:class:`DistributedFilter` (``init_state``, ``partial_fit``, ``merge``, ...), provided by
:class:`LinearModel` (numpy) and :class:`TorchModule` (PyTorch, CPU); a filter without it
gets a :class:`TrainingError` naming what is missing, never a silent Local fit.

A custom strategy subclasses :class:`TrainingStrategy` and implements ``fit(call)``.
"""

from __future__ import annotations

from soma.training._data_parallel import DataParallel
from soma.training._federated import Federated
from soma.training._linear import LinearModel
from soma.training._model_parallel import ModelParallel
from soma.training._options import (
    AllClients,
    BinaryTournament,
    FedAvg,
    FedProx,
    Perturb,
    Pipeline,
    RandomClients,
    Resample,
    TaggedClients,
    Truncation,
    by_tags,
    fedavg,
    fedprox,
    perturb,
    pipeline,
    random,
    truncation,
)
from soma.training._parse import Strategy, parse_strategy
from soma.training._population import PopulationBased
from soma.training._protocol import PROTOCOL, DistributedFilter, weighted_average
from soma.training._shards import FitReport
from soma.training._strategy import FitCall, Local, StrategyModel, TrainingError, TrainingStrategy
from soma.training._torch import TorchModule

__all__ = [
    "PROTOCOL",
    "AllClients",
    "BinaryTournament",
    "DataParallel",
    "DistributedFilter",
    "FedAvg",
    "FedProx",
    "Federated",
    "FitCall",
    "FitReport",
    "LinearModel",
    "Local",
    "ModelParallel",
    "Perturb",
    "Pipeline",
    "PopulationBased",
    "RandomClients",
    "Resample",
    "Strategy",
    "StrategyModel",
    "TaggedClients",
    "TorchModule",
    "TrainingError",
    "TrainingStrategy",
    "Truncation",
    "by_tags",
    "fedavg",
    "fedprox",
    "parse_strategy",
    "perturb",
    "pipeline",
    "random",
    "truncation",
    "weighted_average",
]
