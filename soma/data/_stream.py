"""Streaming execution: a graph forward (and, for filters that can, fitting) over chunks.

Each node has a mode:

- ``fixed``: the graph's fitted state is applied to every chunk (stateless nodes too);
- ``evolving``: the node carries its state from chunk to chunk through
  ``partial_fit(x, y, state, steps) -> state`` (the IterativeFilter protocol; the first
  state is the graph's fitted one, else ``init_state(x, y)``, else None), then forwards;
- ``barrier``: its inputs are buffered until the stream ends, then it runs once (fitting
  on all rows when the stream fits); its descendants run once after it.

Branch and Loop nodes run per chunk: the predicate sees the chunk, so each chunk takes its
own arm, and a Loop repeats its body until ``until`` holds for that chunk; the nodes in an
arm or body keep their own modes (a Loop body's states are per iteration, ``name@i`` in
``states``, as fit unrolls them). A top-level Branch/Loop can be a ``barrier``: it then
runs once on every row, with everything inside it.

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
from soma.plan import KEYED, SINGLE, VARIADIC

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
        self.order = list(plan.regions[(None, None)].nodes)  # the top level, topological
        self.owner = {
            name: key for key, region in plan.regions.items() if key[0] for name in region.nodes
        }  # node inside a Branch arm / Loop body -> (control node, arm)
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
        self._fingerprints = {n: filter_fingerprint(graph.nodes[n]) for n in plan.order}
        self._fixed_keys: dict[str, str] = {}
        self._control_inputs: dict[str, Any] = {}  # a barrier Branch/Loop's joined rows
        # The graph's fitted states by (node, loop iteration path), as the executor keeps them.
        self._fitted: dict[tuple[str, tuple[int, ...]], Any] = (
            dict(graph._states) if graph.is_fitted else {}
        )

    # -- set-up ---------------------------------------------------------------------------

    def _resolve_modes(self, modes: dict[str, Mode]) -> dict[str, Mode]:
        unknown = sorted(set(modes) - set(self.plan.order))
        if unknown:
            raise ValidationError("modes", f"unknown nodes {unknown} (nodes: {self.plan.order})")
        resolved: dict[str, Mode] = {}
        for name in self.plan.order:
            spec, flt = self.plan.nodes[name], self.graph.nodes[name]
            mode = modes.get(name)
            if mode is not None and mode not in _MODES:
                raise ValidationError(f"modes.{name}", f"expected one of {_MODES}, got {mode!r}")
            if spec.kind != "filter":
                resolved[name] = self._control_mode(name, mode)
                continue
            if name in self.owner and modes.get(self._top(name)) == "barrier":
                # Inside a barrier Branch/Loop: it runs once on every row with it.
                resolved[name] = "barrier"
                continue
            learns = not spec.stateless or can_partial_fit(flt)
            default: Mode = "evolving" if self.fit and learns else "fixed"
            mode = mode or default
            if mode == "barrier" and name in self.owner:
                owner, arm = self.owner[name]
                raise StreamError(
                    f"node {name!r} sits in {arm!r} of {self.plan.nodes[owner].kind} {owner!r} "
                    f"and cannot be a 'barrier' on its own; make {owner!r} the barrier"
                )
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

    def _top(self, name: str) -> str:
        """The top-level node ``name`` sits in (itself at the top level)."""
        while name in self.owner:
            name = self.owner[name][0]
        return name

    def _control_mode(self, name: str, mode: Mode | None) -> Mode:
        # A Branch/Loop runs per chunk ("fixed", its arm's nodes in their own modes) or,
        # as a barrier, once on every row at the end; it has no state to evolve.
        kind = self.plan.nodes[name].kind
        if mode == "evolving":
            raise StreamError(
                f"node {name!r} is a {kind.capitalize()} and has no state of its own: give it "
                "'fixed' (per chunk; the nodes inside keep their own modes) or 'barrier'"
            )
        if mode == "barrier" and name in self.owner:
            raise StreamError(
                f"{kind} {name!r} is nested in {self.owner[name][0]!r}; only a top-level "
                "node can be a 'barrier'"
            )
        return mode or "fixed"

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
            self._run_one(name, values, y, keys, (), once=False)
        return values

    def _run_one(
        self, name: str, values: dict, y: Any, keys: dict | None, path: tuple[int, ...], once: bool
    ) -> None:
        """One node of a region: a filter in its mode, or a Branch/Loop with its arm."""
        spec = self.plan.nodes[name]
        if spec.kind == "branch":
            self._run_branch(name, values, y, keys, path, once)
        elif spec.kind == "loop":
            self._run_loop(name, values, y, keys, path, once)
        elif once:
            values[name] = self._run_once(name, _gather(spec, values), y, path)
        else:
            values[name] = self._run_node(name, _gather(spec, values), y, keys, spec.sources, path)

    def _region(
        self,
        owner: str,
        label: str,
        values: dict,
        y: Any,
        keys: dict | None,
        path: tuple,
        once: bool,
    ) -> None:
        for name in self.plan.regions[(owner, label)].nodes:
            self._run_one(name, values, y, keys, path, once)

    def _region_output(self, owner: str, label: str, values: dict, keys: dict | None) -> None:
        """The arm's output becomes the control node's (an empty arm passes its input)."""
        leaves = self.plan.regions[(owner, label)].leaves
        source: Any = ("in", owner)
        values[owner] = _leaves_output(leaves, values) if leaves else values[source]
        if self.cache is not None and keys is not None:
            keys[owner] = combine("arm", *(keys[n] for n in leaves)) if leaves else keys[source]

    def _control_in(self, name: str, values: dict, keys: dict | None) -> Any:
        spec = self.plan.nodes[name]
        x = self._control_inputs.pop(name, _MISSING)
        if x is _MISSING:
            x = _gather(spec, values)[0]
        values[("in", name)] = x
        if self.cache is not None and keys is not None:
            keys[("in", name)] = combine("control-in", *(keys[s] for s in spec.sources))
        return x

    def _decide(self, name: str, func: Any, value: Any) -> bool:
        try:
            return bool(func(value))
        except Exception as exc:
            raise ExecutionError(name, f"stream chunk {self.chunks_done}", exc) from exc

    def _run_branch(
        self, name: str, values: dict, y: Any, keys: dict | None, path: tuple, once: bool
    ) -> None:
        # The predicate sees this chunk's input (all rows for a barrier): each chunk takes
        # its own arm, like a forward on that chunk alone would.
        x = self._control_in(name, values, keys)
        taken = "then" if self._decide(name, self.graph.nodes[name].predicate, x) else "otherwise"
        self._region(name, taken, values, y, keys, path, once)
        self._region_output(name, taken, values, keys)

    def _run_loop(
        self, name: str, values: dict, y: Any, keys: dict | None, path: tuple, once: bool
    ) -> None:
        loop = self.graph.nodes[name]
        self._control_in(name, values, keys)
        for index in range(loop.max_iterations):
            # Each iteration has its own states (the body is unrolled, as in fit).
            self._region(name, "body", values, y, keys, (*path, index), once)
            self._region_output(name, "body", values, keys)
            if loop.until is not None and self._decide(name, loop.until, values[name]):
                break
            values[("in", name)] = values[name]
            if self.cache is not None and keys is not None:
                keys[("in", name)] = keys[name]

    def _run_node(
        self,
        name: str,
        inputs: tuple[Any, ...],
        y: Any,
        keys: dict,
        sources: Any,
        path: tuple[int, ...] = (),
    ) -> Any:
        flt, mode = self.graph.nodes[name], self.modes[name]
        phase = f"stream chunk {self.chunks_done} ({mode})"
        label = _state_label(name, path)
        try:
            if mode == "evolving":
                state = self.states.get(label, _MISSING)
                x = inputs[0] if len(inputs) == 1 else inputs
                if state is _MISSING:
                    state = self._initial_state(name, path, flt, x, y)
                state = flt.partial_fit(x, y, state, 1)
                if state is None:
                    raise ValueError("partial_fit returned None; it must return the new state")
                self.states[label] = state
                if self.cache is not None:
                    seen = [keys[s] for s in sources]
                    chain = combine("evolve", self._history.get(label, ""), *seen)
                    self._history[label] = keys[name] = chain
                return self._forward(name, inputs, state)
            state = self._fixed_state(name, path)
            if self.cache is None:
                return self._forward(name, inputs, state)
            key = combine(
                "stream-out",
                self._fingerprints[name],
                self._state_key(label, state),
                *(keys[s] for s in sources),
            )
            keys[name] = key
            hit, value = self.cache.get(key)
            if hit:
                return value
            value = self._forward(name, inputs, state)
            self.cache.put(key, value)
            return value
        except (ExecutionError, StreamError):
            raise
        except Exception as exc:
            raise ExecutionError(name, phase, exc) from exc

    def _forward(self, name: str, inputs: tuple[Any, ...], state: Any) -> Any:
        if self.plan.nodes[name].mode == VARIADIC:
            return self.graph.nodes[name].forward(*inputs, state=state)
        return self.graph.nodes[name].forward(*inputs, state)

    def _fixed_state(self, name: str, path: tuple[int, ...]) -> Any:
        if self.plan.nodes[name].stateless:
            return None
        state = self._fitted.get((name, path), _MISSING)
        if state is _MISSING:
            owner, arm = self.owner.get(name, (None, None))
            where = f" (in {arm!r} of {owner!r})" if owner else ""
            reason = (
                f"fit ran fewer than {path[-1] + 1} iteration(s) of its Loop"
                if path
                else "fit did not take that Branch arm"
            )
            raise StreamError(
                f"node {name!r}{where} has no fitted state for chunk {self.chunks_done}: "
                f"{reason}; fit on data that reaches it, or stream with fit=True"
            )
        return state

    def _state_key(self, name: str, state: Any) -> str:
        key = self._fixed_keys.get(name)
        if key is None:
            key = self._fixed_keys[name] = hash_value(state)
        return key

    def _initial_state(self, name: str, path: tuple, flt: Any, x: Any, y: Any) -> Any:
        if self._fitted.get((name, path)) is not None:
            return self._fitted[(name, path)]
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
            spec = self.plan.nodes[name]
            buffered = self._buffers.get(name)
            inputs = _concat_inputs(spec, buffered) if buffered else _gather(spec, values)
            if spec.kind == "filter":
                values[name] = self._run_once(name, inputs, y_all, ())
            else:
                self._control_inputs[name] = inputs[0]  # a Branch/Loop on every row, once
                self._run_one(name, values, y_all, None, (), once=True)
        late_leaves = [n for n in self.plan.leaves if n in self.after_barrier]
        self.result = _leaves_output(late_leaves, values)

    def _run_once(self, name: str, inputs: tuple[Any, ...], y_all: Any, path: tuple) -> Any:
        """A node after a barrier: one run on every row (fitting it when the stream fits)."""
        spec, flt = self.plan.nodes[name], self.graph.nodes[name]
        try:
            if spec.stateless:
                state = None
            elif self.fit or not self.graph.is_fitted:
                x = inputs[0] if len(inputs) == 1 else inputs
                state = flt.fit(x, y_all) if spec.fit_takes_y else flt.fit(x)
                self.states[_state_label(name, path)] = state
            else:
                state = self._fixed_state(name, path)
            return self._forward(name, inputs, state)
        except StreamError:
            raise
        except Exception as exc:
            raise ExecutionError(name, "stream end (barrier)", exc) from exc


def _state_label(name: str, path: tuple[int, ...]) -> str:
    """Where ``states`` keeps a node's state: its name; ``name@i`` in Loop iteration i."""
    return name if not path else f"{name}@{'.'.join(str(i) for i in path)}"


def _concat_inputs(spec: Any, buffered: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """A barrier's buffered per-chunk inputs joined into one input per argument."""
    if spec.mode == KEYED:
        return ({s: _concat([chunk[0][s] for chunk in buffered]) for s in spec.sources},)
    return tuple(_concat([chunk[i] for chunk in buffered]) for i in range(len(buffered[0])))


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
