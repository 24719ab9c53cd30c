"""What each filter of a project is for: scaler, reducer, model, or another transform.

The built-in planner composes pipelines as ``[scaler] >> [reducer] >> model``. A filter can
state its role with a private class attribute (``_soma_role = "model"``; private because a
plain class attribute would be a hyperparameter); otherwise the role is inferred from the
module file name (``scalers.py``, ``reducers.py``, ``models.py``), then from words in the
class name and docstring.

>>> role_from_text("models.py", "LogReg", "Multinomial logistic regression")
'model'
>>> role_from_text("prep.py", "MinMaxScale", "Map each feature onto [0, 1]")
'scaler'
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ROLES", "infer_role", "role_from_text", "scale_invariant"]

ROLES = ("scaler", "reducer", "model", "transform")

_FILE_HINTS = (
    ("scaler", r"scal|normali[sz]|standardi[sz]|preproc"),
    ("reducer", r"reduc|select|decompos|feature|project|embed"),
    ("model", r"model|classif|regress|estimat|learner|predict"),
)
_TEXT_HINTS = (
    (
        "model",
        r"classif|regress|predict|\blabel|estimator|\bsvc\b|\bsvm\b|forest|neighbou?r|"
        r"logistic|\bsgd\b|boost|\bmodel\b|\bknn\b",
    ),
    ("reducer", r"principal|component|\bpca\b|reduc|select|projection|\bproject\b|best features"),
    ("scaler", r"scal|normali[sz]|standardi[sz]|centre|center|range|robust"),
)


def role_from_text(file: str, name: str, doc: str) -> str:
    """The role suggested by a filter's file name, then its class name and docstring."""
    stem = file.rsplit("/", 1)[-1].lower()
    for role, pattern in _FILE_HINTS:
        if re.search(pattern, stem):
            return role
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()
    text = f"{words} {doc.lower()}"
    for role, pattern in _TEXT_HINTS:
        if re.search(pattern, text):
            return role
    return "transform"


def infer_role(info: Any) -> str:
    """Role of a discovered filter (a ``soma.project.FilterInfo``)."""
    declared = getattr(info.cls, "_soma_role", None)
    if isinstance(declared, str) and declared in ROLES:
        return declared
    return role_from_text(info.file, info.name, info.doc or "")


#: Model names whose predictions do not change when each feature is rescaled monotonically
#: (trees split on thresholds): a scaler in front of them is a no-op.
_INVARIANT = re.compile(
    r"forest|tree|boost|gbm|gbdt|xgb|lightgbm|catboost|extra ?trees", re.IGNORECASE
)


def scale_invariant(cls: type) -> bool:
    """Whether a model is invariant to per-feature scaling.

    ``_soma_scale_invariant = True`` (or False) on the class decides; otherwise the class
    name and docstring are read (forests, trees and boosting are; everything else is not).

    >>> class RandomForest: "A forest of decision trees."
    >>> scale_invariant(RandomForest)
    True
    """
    declared = getattr(cls, "_soma_scale_invariant", None)
    if isinstance(declared, bool):
        return declared
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", cls.__name__)
    return bool(_INVARIANT.search(f"{words} {cls.__doc__ or ''}"))
