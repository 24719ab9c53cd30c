"""Small filters shared by the study and PBT tests (a plain module: importable in PBT's
worker processes too)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from soma import Filter, search
from soma.study import report


class Quadratic(Filter):
    """f(a, b) = (a - 1.3)^2 + (b + 0.7)^2, minimum 0 at (1.3, -0.7)."""

    a = search(-5.0, 5.0, default=0.0)
    b = search(-5.0, 5.0, default=0.0)

    def forward(self, x, state):
        return np.full(len(x), (self.a - 1.3) ** 2 + (self.b + 0.7) ** 2)


def predicted_value(y_true, y_pred) -> float:
    """The metric for Quadratic: the value it computed."""
    return float(np.mean(y_pred))


class Scale(Filter):
    """Standardises with training mean/std; counts its fits to prove cache reuse."""

    fits = 0
    center = search(choices=[True, False], default=True)

    def fit(self, x, y=None):
        type(self).fits += 1
        return (x.mean(axis=0) if self.center else np.zeros(x.shape[1]), x.std(axis=0) + 1e-9)

    def forward(self, x, state):
        mean, std = state
        return (x - mean) / std


class Ridge(Filter):
    alpha = search(1e-3, 1e2, log=True, default=1.0)

    def fit(self, x, y=None):
        a = x.T @ x + self.alpha * np.eye(x.shape[1])
        return np.linalg.solve(a, x.T @ y)

    def forward(self, x, state):
        return x @ state


class Nearest(Filter):
    """Predicts the mean target of the k nearest training rows."""

    k = search(1, 9, default=3)

    def fit(self, x, y=None):
        return (x, y)

    def forward(self, x, state):
        xs, ys = state
        d = ((x[:, None, :] - xs[None, :, :]) ** 2).sum(-1)
        idx = np.argsort(d, axis=1)[:, : self.k]
        return ys[idx].mean(axis=1)


class Curve(Filter):
    """A learning curve: value at step t is quality * (1 - 0.8^(t+1)); reports each step."""

    quality = search(0.0, 1.0, default=0.5)
    steps = 10
    seen_steps = []  # (quality, last step trained), appended per fit

    def fit(self, x, y=None):
        value = 0.0
        step = -1
        try:
            for step in range(self.steps):
                value = self.quality * (1 - 0.8 ** (step + 1))
                report(value, step)
        finally:
            type(self).seen_steps.append((self.quality, step))
        return value

    def forward(self, x, state):
        return np.full(len(x), state)


class Boom(Filter):
    """Raises in fit when ``fail`` is True."""

    fail = search(choices=[False, True], default=False)

    def fit(self, x, y=None):
        if self.fail:
            raise RuntimeError("boom: bad configuration")
        return 0

    def forward(self, x, state):
        return x


def mse(y_true, y_pred) -> float:
    return float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))


from soma.pbt import IterativeFilter  # noqa: E402


class NoisySGD(IterativeFilter):
    """SGD on ||w - target||^2 with gradient noise: a large learning rate gets close fast
    but jitters around the target; a small one is precise but slow. The best learning rate
    therefore falls over time, which a fixed one cannot follow."""

    lr = search(1e-3, 0.5, log=True, default=0.05)
    noise = 4.0
    fail_above = 1.0  # partial_fit raises when lr exceeds this (to test failing members)

    def init_state(self, x, y=None):
        return {"w": np.zeros(y.shape[1]), "rng": np.random.default_rng(7)}

    def partial_fit(self, x, y, state, steps):
        if self.lr > self.fail_above:
            raise FloatingPointError(f"lr {self.lr:.3g} diverges")
        w, rng = state["w"].copy(), state["rng"]
        for _ in range(steps):
            grad = 2 * (w - y[0]) + self.noise * rng.standard_normal(w.shape)
            w = w - self.lr * grad
        return {"w": w, "rng": rng}

    def forward(self, x, state):
        return np.tile(state["w"], (len(x), 1))


def train_fixed(lr: float, steps: int, x, y) -> float:
    """The same filter trained ``steps`` steps at a fixed learning rate, scored by mse."""
    f = NoisySGD(lr=lr)
    state = f.partial_fit(x, y, f.init_state(x, y), steps)
    return mse(y, f.forward(x, state))


class FarQuadratic(Quadratic):
    """Quadratic shifted up by 4: never better than 4, so a sampler should learn to avoid it."""

    def forward(self, x, state):
        return super().forward(x, state) + 4.0


class LossCurve(IterativeFilter):
    """Trains ``epochs`` steps; its training loss after t steps is (1 - quality) + 0.7^t,
    reported through ``monitor`` (a lower quality gives a worse curve at every step)."""

    quality = search(0.0, 1.0, default=0.5)
    epochs = 8
    _trained: ClassVar[dict[float, int]] = {}  # quality -> steps trained (pruned: fewer)

    def init_state(self, x, y=None):
        return 0

    def partial_fit(self, x, y, state, steps):
        type(self)._trained[self.quality] = state + steps
        return state + steps

    def monitor(self, x, y, state):
        return (1 - self.quality) + 0.7**state

    def forward(self, x, state):
        return np.full(len(x), (1 - self.quality) + 0.7**state)


class PidSGD(NoisySGD):
    """NoisySGD whose state remembers which processes trained it."""

    def partial_fit(self, x, y, state, steps):
        import os

        new = super().partial_fit(x, y, state, steps)
        new["pids"] = state.get("pids", frozenset()) | {os.getpid()}
        return new


class ForgetfulSGD(NoisySGD):
    """Forgets to return its state from partial_fit (a common slip), but still predicts."""

    def partial_fit(self, x, y, state, steps):
        super().partial_fit(x, y, state, steps)

    def forward(self, x, state):
        return np.zeros((len(x), 20))
