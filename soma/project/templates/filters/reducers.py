"""Dimensionality reducers: project onto fewer components or keep the best features."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA as _SklearnPCA
from sklearn.feature_selection import SelectKBest as _SklearnSelectKBest
from sklearn.feature_selection import f_classif

from soma import Filter, search

N_FEATURES = 64  # the example dataset's feature count (set by `soma init`)


class PCA(Filter):
    """Project onto the leading principal components (capped at the feature count)."""

    n_components = search(2, N_FEATURES, default=max(2, N_FEATURES // 2))
    whiten = search(choices=[False, True])

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        n = min(self.n_components, x.shape[0], x.shape[1])
        return _SklearnPCA(n_components=n, whiten=self.whiten, random_state=0).fit(x)

    def forward(self, x, state):
        return state.transform(np.asarray(x, dtype=np.float64))


class SelectKBest(Filter):
    """Keep the k features with the highest ANOVA F-score against the labels."""

    k = search(1, N_FEATURES, default=max(1, N_FEATURES // 2))

    def fit(self, x, y=None):
        if y is None:
            raise ValueError("SelectKBest needs labels: fit it with y")
        x = np.asarray(x, dtype=np.float64)
        with warnings.catch_warnings():
            # Constant features have no F-score; they simply rank last.
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            return _SklearnSelectKBest(f_classif, k=min(self.k, x.shape[1])).fit(x, y)

    def forward(self, x, state):
        return state.transform(np.asarray(x, dtype=np.float64))
