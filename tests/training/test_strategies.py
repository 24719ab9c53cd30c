"""The typed strategies: validation names the field, serialisation round-trips."""

from __future__ import annotations

import json

import pytest

from soma.errors import ValidationError
from soma.training import (
    DataParallel,
    Federated,
    Local,
    ModelParallel,
    PopulationBased,
    by_tags,
    fedprox,
    parse_strategy,
    perturb,
    pipeline,
    random,
    truncation,
)

EXAMPLES = [
    Local(),
    DataParallel(num_replicas=2),
    DataParallel(num_replicas=3, aggregation="parameter_server"),
    ModelParallel(partitions={"a": "w0", "b": "w1"}, communication=pipeline(micro_batch=8)),
    Federated(num_clients=4, rounds=3, aggregation=fedprox(0.1), client_selection=random(0.5)),
    Federated(
        num_clients=2, rounds=1, client_selection=by_tags("eu"), client_tags=[["eu"], ["us"]]
    ),
    PopulationBased(
        population_size=4, generations=2, exploit=truncation(0.5), explore=perturb(0.5, 2.0)
    ),
    PopulationBased(
        population_size=4, generations=2, exploit="binary_tournament", explore="resample"
    ),
]


@pytest.mark.parametrize("strategy", EXAMPLES, ids=lambda s: type(s).__name__)
def test_strategies_round_trip_through_dicts_and_json(strategy):
    data = strategy.model_dump()
    assert parse_strategy(data) == strategy
    assert parse_strategy(strategy.model_dump_json()) == strategy
    assert parse_strategy(json.loads(json.dumps(strategy.record()))) == strategy
    assert hash(strategy) == hash(parse_strategy(data))  # frozen


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: DataParallel(num_replicas=0), "DataParallel.num_replicas"),
        (lambda: DataParallel(num_replicas=2, aggregation="gossip"), "DataParallel.aggregation"),
        (lambda: Federated(num_clients=2, rounds=0), "Federated.rounds"),
        (lambda: Federated(num_clients=0, rounds=1), "Federated.num_clients"),
        (lambda: random(0.0), "RandomClients.fraction"),
        (lambda: random(1.5), "RandomClients.fraction"),
        (lambda: fedprox(-1.0), "FedProx.mu"),
        (
            lambda: Federated(
                num_clients=2, rounds=1, client_selection={"kind": "random", "fraction": 2}
            ),
            "Federated.client_selection.fraction",
        ),
        (lambda: Federated(num_clients=2, rounds=1, client_selection=by_tags("eu")), "Federated"),
        (lambda: Federated(num_clients=2, rounds=1, client_tags=[["a"]]), "Federated"),
        (lambda: ModelParallel(partitions={}), "ModelParallel.partitions"),
        (lambda: pipeline(0), "Pipeline.micro_batch"),
        (
            lambda: PopulationBased(population_size=1, generations=1),
            "PopulationBased.population_size",
        ),
        (lambda: truncation(0.9), "Truncation.fraction"),
        (
            lambda: parse_strategy({"kind": "data_parallel", "num_replicas": -1}),
            "DataParallel.num_replicas",
        ),
        (lambda: parse_strategy({"kind": "magic"}), "strategy.kind"),
        (lambda: parse_strategy(3), "strategy"),
    ],
)
def test_bad_values_name_the_field(make, field):
    with pytest.raises(ValidationError) as info:
        make()
    assert info.value.field.startswith(field), info.value


def test_bare_names_and_repr():
    assert parse_strategy("local") == Local()
    assert repr(DataParallel(num_replicas=2)) == "DataParallel(num_replicas=2)"
    strategy = Federated(num_clients=3, rounds=2, aggregation="fedavg", client_selection="all")
    assert strategy.aggregation.kind == "fedavg" and strategy.client_selection.kind == "all"
    with pytest.raises(ValidationError, match="Extra inputs"):
        DataParallel(num_replicas=2, replicas=3)


def test_cache_tokens_tell_strategies_apart():
    assert Local().cache_token() is None
    tokens = {s.cache_token() for s in EXAMPLES[1:]}
    assert len(tokens) == len(EXAMPLES) - 1
    assert DataParallel(num_replicas=2).cache_token() == DataParallel(num_replicas=2).cache_token()
