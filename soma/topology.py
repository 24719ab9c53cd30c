"""``Topology``: a graph's structure as one frozen value.

The compiler (``soma.plan``), the renderers (``soma._graph_render``) and the fingerprint
read a graph through this value instead of ``Graph``'s private attributes. ``Graph``
builds it on first use after a change and keeps it until the next change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Topology"]


@dataclass(frozen=True, slots=True, eq=False)
class Topology:
    """Nodes (in the order they were added), edges (in fan-in order) and control regions.

    ``owner``: node -> (Branch/Loop node, arm label) for nodes inside an arm; ``arms``:
    Branch/Loop node -> arm label -> its member nodes. ``placements``: node -> the
    ``soma.cluster`` Placement it asked for (resources / tags; such nodes compile to Remote).
    """

    filters: Mapping[str, Any]
    preds: Mapping[str, tuple[str, ...]]
    succs: Mapping[str, tuple[str, ...]]
    edges: tuple[tuple[str, str], ...]
    owner: Mapping[str, tuple[str, str]]
    arms: Mapping[str, Mapping[str, tuple[str, ...]]]
    placements: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(
        cls,
        filters: Mapping[str, Any],
        preds: Mapping[str, list[str]],
        succs: Mapping[str, list[str]],
        edges: list[tuple[str, str]],
        owner: Mapping[str, tuple[str, str]],
        arms: Mapping[str, Mapping[str, list[str]]],
        placements: Mapping[str, Any] | None = None,
    ) -> Topology:
        """A frozen copy of a graph's building state."""
        return cls(
            filters=MappingProxyType(dict(filters)),
            preds=MappingProxyType({k: tuple(v) for k, v in preds.items()}),
            succs=MappingProxyType({k: tuple(v) for k, v in succs.items()}),
            edges=tuple(edges),
            owner=MappingProxyType(dict(owner)),
            arms=MappingProxyType(
                {
                    k: MappingProxyType({label: tuple(v) for label, v in a.items()})
                    for k, a in arms.items()
                }
            ),
            placements=MappingProxyType(dict(placements or {})),
        )

    def region(self, owner: str | None, label: str | None) -> list[str]:
        """The nodes of the top level (owner None) or of one arm, in insertion order."""
        if owner is None:
            return [n for n in self.filters if n not in self.owner]
        return list(self.arms[owner][label])  # type: ignore[index]
