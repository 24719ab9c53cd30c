"""Training strategies: how a node's ``fit`` is carried out.

The node runner never calls ``filter.fit`` itself: it builds a :class:`FitCall` (the node,
its filter, its inputs and labels, and how ``fit`` takes them) and hands it to the graph's
strategy. :class:`Local` (the default) calls ``fit`` here, once.

A strategy plugs in by subclassing :class:`TrainingStrategy` and implementing
``fit(call) -> state``. It may run ``call.run()`` elsewhere (another process or machine:
the call is plain data plus the filter), split ``call.args`` into shards and combine the
states (data parallel), or fit per site and aggregate (federated); it must return the
state the filter's ``forward`` expects. Pass it as ``Graph(strategy=...)``. The strategy is
not part of the cache key: a strategy must give the state ``Local`` would (up to its own
numerical noise), or the cache serves one strategy's state to another.
"""

from __future__ import annotations

from soma.training._strategy import FitCall, Local, TrainingStrategy

__all__ = ["FitCall", "Local", "TrainingStrategy"]
