"""A PyTorch ``nn.Module`` wrapper filter that follows the distributed-fitting protocol (CPU).

Subclass :class:`TorchModule` and override ``build(n_in, n_out) -> nn.Module`` (default: an
MLP with ``hidden`` Tanh layers). Training is full-batch SGD on the mean loss (``mse`` or
``cross_entropy``), so a DataParallel round equals a Local step up to float rounding. The
state is ``{"n_in", "n_out", "params": {name: tensor}}``: plain tensors travel between
processes and average leaf by leaf. torch is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soma.space import search
from soma.training._protocol import DistributedFilter

__all__ = ["TorchModule"]


class TorchModule(DistributedFilter):
    """``loss="mse"``: regression (forward -> float array, one column squeezed);
    ``loss="cross_entropy"``: classification on int labels (forward -> labels)."""

    loss = "mse"
    lr = search(1e-4, 1.0, log=True, default=0.05)
    epochs = 100
    hidden = (32,)
    seed = 0

    # -- the module ----------------------------------------------------------------------

    def build(self, n_in: int, n_out: int) -> Any:
        """The network; override for another architecture (seeded by ``init_state``)."""
        from torch import nn

        layers: list[Any] = []
        width = n_in
        for size in self.hidden:
            layers += [nn.Linear(width, int(size)), nn.Tanh()]
            width = int(size)
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def _module(self, state: dict[str, Any]) -> Any:
        module = self.build(state["n_in"], state["n_out"])
        module.load_state_dict(state["params"])
        return module

    def _tensors(self, x: Any, y: Any) -> tuple[Any, Any]:
        import torch

        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if xt.ndim == 1:
            xt = xt.reshape(-1, 1)
        if y is None:
            return xt, None
        if self.loss == "cross_entropy":
            yt = torch.as_tensor(np.asarray(y, dtype=np.int64).reshape(-1))
        else:
            yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
            if yt.ndim == 1:
                yt = yt.reshape(-1, 1)
        if len(yt) != len(xt):
            raise ValueError(f"TorchModule: x has {len(xt)} rows but y has {len(yt)}")
        return xt, yt

    def _loss(self, module: Any, xt: Any, yt: Any) -> Any:
        from torch.nn import functional

        out = module(xt)
        if self.loss == "cross_entropy":
            return functional.cross_entropy(out, yt)
        return functional.mse_loss(out, yt)

    # -- the protocol --------------------------------------------------------------------

    def init_state(self, x: Any, y: Any = None) -> dict[str, Any]:
        import torch

        if self.loss not in ("mse", "cross_entropy"):
            raise ValueError(
                f"TorchModule.loss: expected 'mse' or 'cross_entropy', got {self.loss!r}"
            )
        xt, yt = self._tensors(x, y)
        if yt is None:
            raise ValueError("TorchModule: fit needs labels y")
        if self.loss == "cross_entropy":
            n_out = int(yt.max()) + 1 if len(yt) else 1
        else:
            n_out = int(yt.shape[1])
        torch.manual_seed(int(self.seed))  # same seed, same initial weights, any process
        module = self.build(int(xt.shape[1]), n_out)
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return {"n_in": int(xt.shape[1]), "n_out": n_out, "params": params}

    def gradient(self, x: Any, y: Any, state: dict[str, Any]) -> dict[str, Any]:
        xt, yt = self._tensors(x, y)
        if len(xt) == 0:
            raise ValueError("TorchModule: gradient of an empty shard")
        module = self._module(state)
        module.zero_grad()
        self._loss(module, xt, yt).backward()
        return {name: p.grad.detach().clone() for name, p in module.named_parameters()}

    def apply_gradient(self, state: dict[str, Any], gradient: dict[str, Any]) -> dict[str, Any]:
        params = dict(state["params"])
        for name, grad in gradient.items():
            params[name] = params[name] - float(self.lr) * grad
        return {**state, "params": params}

    def partial_fit(self, x: Any, y: Any, state: dict[str, Any], steps: int) -> dict[str, Any]:
        return self._train(x, y, state, int(steps), None, 0.0)

    def partial_fit_prox(
        self, x: Any, y: Any, state: dict[str, Any], steps: int, anchor: Any, mu: float
    ) -> dict[str, Any]:
        return self._train(x, y, state, int(steps), anchor, float(mu))

    def _train(
        self, x: Any, y: Any, state: dict[str, Any], steps: int, anchor: Any, mu: float
    ) -> dict[str, Any]:
        import torch

        xt, yt = self._tensors(x, y)
        module = self._module(state)
        named = dict(module.named_parameters())
        with torch.enable_grad():
            for _ in range(steps):
                module.zero_grad()
                loss = self._loss(module, xt, yt)
                if anchor is not None:
                    prox = sum(((named[n] - anchor["params"][n]) ** 2).sum() for n in named)
                    loss = loss + 0.5 * mu * prox
                loss.backward()
                with torch.no_grad():
                    for p in named.values():
                        p -= float(self.lr) * p.grad
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return {**state, "params": params}

    def loss_value(self, x: Any, y: Any, state: dict[str, Any]) -> float:
        import torch

        xt, yt = self._tensors(x, y)
        with torch.no_grad():
            return float(self._loss(self._module(state), xt, yt))

    def forward(self, x: Any, state: dict[str, Any]) -> np.ndarray:
        import torch

        xt, _ = self._tensors(x, None)
        with torch.no_grad():
            out = self._module(state)(xt).numpy()
        if self.loss == "cross_entropy":
            return out.argmax(axis=1)
        return out[:, 0] if out.shape[1] == 1 else out
