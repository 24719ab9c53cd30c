"""Per-sample validation losses kept with each experiment, agent-side.

The knowledge base records an experiment's metrics, not its per-sample results; paired
verdicts need both experiments' losses on the same validation samples. They are kept as one
``.npy`` per experiment id under ``.soma/agent/losses/``, written atomically, so a resumed run
(or another run on the same project) can compare against any earlier experiment. A missing
file only means "no paired test possible": verdicts then fall back to the threshold rule.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from soma._atomic import atomic_write

__all__ = ["LossStore"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class LossStore:
    """``.npy`` files of per-sample losses, by experiment id, with an in-memory cache."""

    def __init__(self, state_dir: str | Path) -> None:
        self.folder = Path(state_dir) / "agent" / "losses"
        self._cache: dict[str, np.ndarray | None] = {}

    def _path(self, experiment_id: str) -> Path:
        if not _SAFE_ID.match(experiment_id) or experiment_id.startswith("."):
            raise ValueError(
                f"experiment_id: expected letters, digits and '_.:-', got {experiment_id!r}"
            )
        return self.folder / f"{experiment_id.replace(':', '_')}.npy"

    def put(self, experiment_id: str, losses: Any) -> None:
        array = np.ascontiguousarray(np.asarray(losses, dtype=np.float64).reshape(-1))
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        atomic_write(self._path(experiment_id), buffer.getvalue())
        self._cache[experiment_id] = array

    def get(self, experiment_id: str | None) -> np.ndarray | None:
        if not experiment_id:
            return None
        if experiment_id in self._cache:
            return self._cache[experiment_id]
        path = self._path(experiment_id)
        try:
            array: np.ndarray | None = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # not kept (an older experiment) or unreadable
            array = None
        if array is not None:  # a miss is not cached: the file may be written later
            self._cache[experiment_id] = array
        return array
