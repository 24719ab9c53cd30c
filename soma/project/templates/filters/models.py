"""Classifiers: fit on the training split, forward returns predicted labels."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC as _SklearnSVC

from soma import Filter, search
from soma.study import report


class _Classifier(Filter):
    """Shared forward: the fitted estimator's predicted labels."""

    def forward(self, x, state):
        return state.predict(np.asarray(x, dtype=np.float64))


class LogReg(_Classifier):
    """Multinomial logistic regression; C is the inverse regularisation strength."""

    C = search(1e-3, 1e3, log=True, default=1.0)
    max_iter = 500

    def fit(self, x, y=None):
        return LogisticRegression(C=self.C, max_iter=self.max_iter).fit(x, y)


class SVC(_Classifier):
    """Support-vector classifier with an RBF kernel."""

    C = search(1e-2, 1e3, log=True, default=10.0)
    gamma = search(1e-4, 1.0, log=True, default=0.01)

    def fit(self, x, y=None):
        return _SklearnSVC(C=self.C, gamma=self.gamma).fit(x, y)


class RandomForest(_Classifier):
    """A forest of decision trees voting on the label."""

    n_estimators = search(10, 300, log=True, default=100)
    max_depth = search(2, 32, default=16)
    seed = 0

    def fit(self, x, y=None):
        model = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            random_state=self.seed,
            n_jobs=1,
        )
        return model.fit(x, y)


class KNN(_Classifier):
    """k-nearest-neighbours vote."""

    n_neighbors = search(1, 30, default=5)
    weights = search(choices=["uniform", "distance"])

    def fit(self, x, y=None):
        return KNeighborsClassifier(n_neighbors=self.n_neighbors, weights=self.weights).fit(x, y)


class SGD(_Classifier):
    """Linear classifier trained epoch by epoch with SGD; reports each epoch to studies."""

    epochs = search(1, 50, log=True, default=20)
    learning_rate = search(1e-4, 1.0, log=True, default=0.01)
    alpha = search(1e-6, 1e-2, log=True, default=1e-4)
    loss = search(choices=["log_loss", "hinge", "modified_huber"])
    seed = 0

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        classes = np.unique(y)
        model = SGDClassifier(
            loss=self.loss,
            alpha=self.alpha,
            learning_rate="constant",
            eta0=self.learning_rate,
            random_state=self.seed,
        )
        rng = np.random.default_rng(self.seed)
        for epoch in range(self.epochs):
            order = rng.permutation(len(x))
            model.partial_fit(x[order], y[order], classes=classes)
            # Training accuracy per epoch lets a study's pruner stop hopeless trials early;
            # outside a study report() does nothing.
            report(model.score(x, y), step=epoch)
        return model
