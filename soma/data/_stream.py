"""Streaming execution: a graph forward (and, for filters that can, fitting) over chunks.

Each node has a mode:

- ``fixed``: the graph's fitted state is applied to every chunk (stateless nodes too);
- ``evolving``: the node carries its state from chunk to chunk through
  ``partial_fit(x, y, state, steps) -> state`` (the IterativeFilter protocol; the first
  state is the graph's fitted one, else ``init_state(x, y)``, else None), then forwards;
- ``barrier``: its inputs are buffered until the stream ends, then it runs once (fitting
  on all rows when the stream fits); its descendants run once after it.

With ``fit=True`` every learning node defaults to ``evolving``; one without ``partial_fit``
is an error before any chunk is read (make it a barrier, or fit the graph first). Every
``checkpoint_every`` chunks the evolving states and barrier buffers go to a store; a
restarted stream with the same checkpoint resumes after the last checkpointed chunk (the
outputs of chunks before it were yielded by the earlier run). With a ``cache``, per-chunk
outputs are cached under Merkle keys (an evolving node's output key chains the keys of
every chunk it has seen), so a rerun over the same chunks computes nothing twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from soma.data._base import DataStore
from soma.data._errors import StreamError
from soma.data.sources import chunks_from
from soma.errors import ExecutionError, ValidationError
from soma.fingerprint import combine, filter_fingerprint, hash_value
from soma.plan import KEYED, SINGLE

if TYPE_CHECKING:
    from soma.cache import Cache
    from soma.graph import Graph

__all__ = ["Mode", "Stream"]

Mode = Literal["fixed", "evolving", "barrier"]
_MODES = ("fixed", "evolving", "barrier")
_MISSING = object()


def can_partial_fit(flt: Any) -> bool:
    from soma.pbt._iterative import IterativeFilter

    method = getattr(type(flt), "partial_fit", None)
    return callable(method) and method is not getattr(IterativeFilter, "partial_fit", None)


class Stream:
    """Iterate it for the per-chunk outputs of the leaves that do not depend on a barrier
    (one leaf: its value; several: a dict by name); afterwards ``result`` holds the outputs
    of the leaves after a barrier, and ``states`` the evolving nodes' last states."""

    def __init__(
        self,
        graph: Graph,
        source: Any,
        *,
        modes: dict[str, Mode] | None = None,
        fit: bool = False,
        labels: bool = False,
        checkpoint: DataStore | str | os.PathLike[str] | None = None,
        checkpoint_every: int = 10,
        stream_id: str = "stream",
        cache: Cache | None = None,
    ) -> None:
        from soma.data._base import check_key

        plan = graph.compile()
        self.graph, self.source, self.fit, self.labels = graph, source, fit, labels
        self.cache = cache
        self.plan = plan
        self.order = [n for n in plan.order if n in plan.regions[(None, None)].nodes]
        for name in plan.order:
            spec = plan.nodes[name]
            if spec.kind != "filter" or name not in self.order:
                raise StreamError(
                    f"node {name!r}: Branch/Loop steps cannot run in a stream yet; "
                    "stream the graph before or after them"
                )
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int):
            raise ValidationError(
                "checkpoint_every", f"expected an int >= 1, got {checkpoint_every!r}"
            )
        if checkpoint_every < 1:
            raise ValidationError(
                "checkpoint_every", f"expected an int >= 1, got {checkpoint_every}"
            )
        self.checkpoint_every = checkpoint_every
        self.checkpoint_key = check_key(f"{stream_id}.checkpoint")
        if checkpoint is None or isinstance(checkpoint, DataStore):
            self.checkpoint_store = checkpoint
        else:
            from soma.data.local import LocalStore

            self.checkpoint_store = LocalStore(checkpoint)
        self.modes = self._resolve_modes(modes or {})
        self.after_barrier = self._after_barrier()
        self.states: dict[str, Any] = {}
        self.result: Any = None
        self.chunks_done = 0
        self.resumed_from = 0
        self._buffers: dict[str, list[tuple[Any, ...]]] = {}
        self._ys: list[Any] = []
        self._history: dict[str, str] = {}  # evolving node -> key chain of what it has seen
        self._fingerprints = {n: filter_fingerprint(graph.nodes[n]) for n in self.order}
        self._fixed_keys: dict[str, str] = {}
        self._fitted: dict[str, Any] = graph.states if graph.is_fitted else {}

    # -- set-up ---------------------------------------------------------------------------

    def _resolve_modes(self, modes: dict[str, Mode]) -> dict[str, Mode]:
        unknown = sorted(set(modes) - set(self.order))
        if unknown:
            raise ValidationError("modes", f"unknown nodes {unknown} (nodes: {self.order})")
        resolved: dict[str, Mode] = {}
        for name in self.order:
            spec, flt = self.plan.nodes[name], self.graph.nodes[name]
            learns = not spec.stateless or can_partial_fit(flt)
            default: Mode = "evolving" if self.fit and learns else "fixed"
            mode = modes.get(name, default)
            if mode not in _MODES:
                raise ValidationError(f"modes.{name}", f"expected one of {_MODES}, got {mode!r}")
            if mode == "evolving" and not can_partial_fit(flt):
                raise StreamError(
                    f"node {name!r} ({type(flt).__name__}) cannot be fitted over a stream: it "
                    "has no partial_fit(x, y, state, steps) -> state; make it a 'barrier' (fits"
                    " once on every row) or fit the graph first and stream with fit=False"
                )
            if mode == "fixed" and not spec.stateless and not self.graph.is_fitted:
                raise StreamError(
                    f"node {name!r} ({type(flt).__name__}) learns a state and is in mode "
                    "'fixed', but the graph is not fitted: fit it first, or stream with "
                    "fit=True (partial_fit) or mode 'barrier'"
                )
            resolved[name] = mode
        return resolved

    def _after_barrier(self) -> set[str]:
        late: set[str] = set()
        for name in self.order:  # topological: a node is late if a barrier or a late node feeds it
            spec = self.plan.nodes[name]
            if self.modes[name] == "barrier" or any(s in late for s in spec.sources):
                late.add(name)
        return late

    # -- checkpoints ------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "graph": self.graph.fingerprint(),
            "modes": self.modes,
            "chunks_done": self.chunks_done,
            "states": self.states,
            "buffers": self._buffers,
            "ys": self._ys,
            "history": self._history,
        }

    def _save(self) -> None:
        if self.checkpoint_store is not None:
            self.checkpoint_store.put(self._snapshot(), self.checkpoint_key)

    def _restore(self) -> None:
        store = self.checkpoint_store
        if store is None or not store.exists(self.checkpoint_key):
            return
        saved = store.get(self.checkpoint_key)
        if saved.get("graph") != self.graph.fingerprint() or saved.get("modes") != self.modes:
            raise StreamError(
                f"checkpoint {self.checkpoint_key!r} in {store!r} was written by another graph "
                "or other modes; remove it (or use another stream_id) to start over"
            )
        self.chunks_done = self.resumed_from = saved["chunks_done"]
        self.states, self._buffers = saved["states"], saved["buffers"]
        self._ys, self._history = saved["ys"], saved["history"]

    # -- running ----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        self._restore()
        early_leaves = [n for n in self.plan.leaves if n not in self.after_barrier]
        for chunk in chunks_from(self.source, self.chunks_done):
            x, y = self._split(chunk)
            values = self._run_chunk(x, y)
            self.chunks_done += 1
            if early_leaves:
                yield _leaves_output(early_leaves, values)
            # Saved after the yield: a kill between the two replays this chunk on resume
            # (its output is given again) rather than losing it.
            if self.chunks_done % self.checkpoint_every == 0:
                self._save()
        self._finish()
        if self.checkpoint_store is not None and self.checkpoint_store.exists(self.checkpoint_key):
            self.checkpoint_store.remove(self.checkpoint_key)  # done: a rerun starts over

    def run(self) -> list[Any]:
        """Run the whole stream; the per-chunk outputs, in order."""
        return list(self)

    def _split(self, chunk: Any) -> tuple[Any, Any]:
        if not self.labels:
            return chunk, None
        if not (isinstance(chunk, tuple) and len(chunk) == 2):
            raise ValidationError(
                "chunks",
                f"with labels=True every chunk is an (x, y) pair, got {type(chunk).__name__}",
            )
        return chunk

    def _run_chunk(self, x: Any, y: Any) -> dict[Any, Any]:
        values: dict[Any, Any] = {("in", None): x}
        keys: dict[Any, str] = {}
        if self.cache is not None:
            keys[("in", None)] = hash_value(x)
        if self.labels and any(self.plan.nodes[n].fit_takes_y for n in self.after_barrier):
            self._ys.append(y)
        for name in self.order:
            spec = self.plan.nodes[name]
            if name in self.after_barrier:
                if self.modes[name] == "barrier" and all(
                    s not in self.after_barrier for s in spec.sources
                ):
                    self._buffers.setdefault(name, []).append(_gather(spec, values))
                continue
            inputs = _gather(spec, values)
            values[name] = self._run_node(name, inputs, y, keys, spec.sources)
        return values

    def _run_node(
        self, name: str, inputs: tuple[Any, ...], y: Any, keys: dict, sources: Any
    ) -> Any:
        flt, mode = self.graph.nodes[name], self.modes[name]
        phase = f"stream chunk {self.chunks_done} ({mode})"
        try:
            if mode == "evolving":
                state = self.states.get(name, _MISSING)
                x = inputs[0] if len(inputs) == 1 else inputs
                if state is _MISSING:
                    state = self._initial_state(name, flt, x, y)
                state = flt.partial_fit(x, y, state, 1)
                if state is None:
                    raise ValueError("partial_fit returned None; it must return the new state")
                self.states[name] = state
                if self.cache is not None:
                    seen = [keys[s] for s in sources]
                    chain = combine("evolve", self._history.get(name, ""), *seen)
                    self._history[name] = keys[name] = chain
                return flt.forward(*inputs, state)
            state = self._fitted.get(name)
            if self.cache is None:
                return flt.forward(*inputs, state)
            key = combine(
                "stream-out",
                self._fingerprints[name],
                self._state_key(name, state),
                *(keys[s] for s in sources),
            )
            keys[name] = key
            hit, value = self.cache.get(key)
            if hit:
                return value
            value = flt.forward(*inputs, state)
            self.cache.put(key, value)
            return value
        except ExecutionError:
            raise
        except Exception as exc:
            raise ExecutionError(name, phase, exc) from exc

    def _state_key(self, name: str, state: Any) -> str:
        key = self._fixed_keys.get(name)
        if key is None:
            key = self._fixed_keys[name] = hash_value(state)
        return key

    def _initial_state(self, name: str, flt: Any, x: Any, y: Any) -> Any:
        if self._fitted.get(name) is not None:
            return self._fitted[name]
        init = getattr(flt, "init_state", None)
        return init(x, y) if callable(init) else None

    def _finish(self) -> None:
        if not self.after_barrier:
            return
        values: dict[Any, Any] = {}
        y_all = _concat(self._ys) if self._ys else None
        for name in self.order:
            if name not in self.after_barrier:
                continue
            spec, flt = self.plan.nodes[name], self.graph.nodes[name]
            buffered = self._buffers.get(name)
            if buffered is not None:
                inputs = tuple(
                    _concat([chunk[i] for chunk in buffered]) for i in range(len(buffered[0]))
                )
            else:
                inputs = _gather(spec, values)
            try:
                if spec.stateless:
                    state = None
                elif self.fit or not self.graph.is_fitted:
                    x = inputs[0] if len(inputs) == 1 else inputs
                    state = flt.fit(x, y_all) if spec.fit_takes_y else flt.fit(x)
                    self.states[name] = state
                else:
                    state = self._fitted.get(name)
                values[name] = flt.forward(*inputs, state)
            except Exception as exc:
                raise ExecutionError(name, "stream end (barrier)", exc) from exc
        late_leaves = [n for n in self.plan.leaves if n in self.after_barrier]
        self.result = _leaves_output(late_leaves, values)


def _gather(spec: Any, values: dict[Any, Any]) -> tuple[Any, ...]:
    if spec.mode == SINGLE:
        return (values[spec.sources[0]],)
    if spec.mode == KEYED:
        return ({source: values[source] for source in spec.sources},)
    return tuple(values[source] for source in spec.sources)


def _leaves_output(leaves: list[str], values: dict[Any, Any]) -> Any:
    if len(leaves) == 1:
        return values[leaves[0]]
    return {name: values[name] for name in leaves}


def _concat(parts: list[Any]) -> Any:
    if not parts:
        return parts
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    if all(isinstance(p, list) for p in parts):
        return [item for part in parts for item in part]
    return parts
