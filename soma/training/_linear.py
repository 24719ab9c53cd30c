"""A numpy linear / logistic model that follows the distributed-fitting protocol.

Full-batch gradient descent on the mean loss: one ``partial_fit`` step is
``w -= lr * grad(mean loss)``. Because the mean-loss gradient over all rows is the
shard-size-weighted mean of the shards' gradients, a DataParallel round (each replica one
step on its shard, states averaged by shard size) is exactly one Local step.

>>> import numpy as np
>>> x = np.linspace(-1, 1, 40).reshape(-1, 1)
>>> model = LinearModel(lr=0.5, epochs=200)
>>> state = model.fit(x, 3.0 * x[:, 0] + 1.0)
>>> [round(v, 3) for v in (float(state["w"][0]), state["b"])]
[3.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soma.space import search
from soma.training._protocol import DistributedFilter

__all__ = ["LinearModel"]


def _check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise ValueError(f"LinearModel: x must be 2-D (rows, features), got shape {x.shape}")
    if y is None:
        raise ValueError("LinearModel: fit needs labels y")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"LinearModel: x has {len(x)} rows but y has {len(y)}")
    return x, y


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


class LinearModel(DistributedFilter):
    """``loss="squared"``: linear regression (forward -> predictions);
    ``loss="logistic"``: binary logistic regression on 0/1 labels (forward -> labels)."""

    loss = "squared"
    lr = search(1e-4, 10.0, log=True, default=0.1)
    epochs = 100
    l2 = 0.0

    def init_state(self, x: Any, y: Any = None) -> dict[str, Any]:
        if self.loss not in ("squared", "logistic"):
            raise ValueError(
                f"LinearModel.loss: expected 'squared' or 'logistic', got {self.loss!r}"
            )
        x = np.asarray(x)
        features = 1 if x.ndim == 1 else int(x.shape[1])
        return {"w": np.zeros(features), "b": 0.0}

    def gradient(self, x: Any, y: Any, state: dict[str, Any]) -> dict[str, Any]:
        x, y = _check_xy(x, y)
        if len(x) == 0:
            raise ValueError("LinearModel: gradient of an empty shard")
        z = x @ state["w"] + state["b"]
        residual = (z - y) if self.loss == "squared" else (_sigmoid(z) - y)
        grad_w = x.T @ residual / len(x) + self.l2 * state["w"]
        return {"w": grad_w, "b": float(residual.mean())}

    def apply_gradient(self, state: dict[str, Any], gradient: dict[str, Any]) -> dict[str, Any]:
        return {
            "w": state["w"] - self.lr * np.asarray(gradient["w"]),
            "b": float(state["b"] - self.lr * gradient["b"]),
        }

    def partial_fit(self, x: Any, y: Any, state: dict[str, Any], steps: int) -> dict[str, Any]:
        for _ in range(int(steps)):
            state = self.apply_gradient(state, self.gradient(x, y, state))
        return state

    def partial_fit_prox(
        self, x: Any, y: Any, state: dict[str, Any], steps: int, anchor: Any, mu: float
    ) -> dict[str, Any]:
        for _ in range(int(steps)):
            grad = self.gradient(x, y, state)
            grad = {
                "w": grad["w"] + mu * (state["w"] - anchor["w"]),
                "b": grad["b"] + mu * (state["b"] - anchor["b"]),
            }
            state = self.apply_gradient(state, grad)
        return state

    def loss_value(self, x: Any, y: Any, state: dict[str, Any]) -> float:
        """The mean training loss (squared error / 2, or log-loss) of ``state`` on x, y."""
        x, y = _check_xy(x, y)
        z = x @ state["w"] + state["b"]
        if self.loss == "squared":
            return float(0.5 * np.mean((z - y) ** 2))
        p = np.clip(_sigmoid(z), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    def forward(self, x: Any, state: dict[str, Any]) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(-1, 1)
        z = x @ state["w"] + state["b"]
        if self.loss == "squared":
            return z
        return (z >= 0.0).astype(np.int64)
