"""Parameter importances of a line with many pipeline families stay cheap."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial

from soma.knowledge._optuna_plots import _importance_evaluator, draw_optuna_plot


def _study(families: int, n: int = 40) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    pipelines = CategoricalDistribution([f"family{i}" for i in range(families)])
    alpha = FloatDistribution(1e-3, 1.0, log=True)
    for i in range(n):
        family = f"family{i % families}"
        study.add_trial(
            create_trial(
                value=0.5 + 0.01 * (i % families) + 0.001 * i,
                params={"pipeline": family, "alpha": 1e-3 * (1.15**i)},
                distributions={"pipeline": pipelines, "alpha": alpha},
            )
        )
    return study


def test_regression_wide_pipeline_categorical_does_not_stall_the_report(tmp_path: Path) -> None:
    # A 40-experiment agent run over 20 pipeline families spent ~7 minutes in fANOVA at the
    # end of the run (its cost grows exponentially with a categorical's choices).
    wide = _study(families=20)
    assert isinstance(
        _importance_evaluator(wide), optuna.importance.MeanDecreaseImpurityImportanceEvaluator
    )
    outcome = draw_optuna_plot(wide, "importances", tmp_path / "imp.png", target_name="r2")
    assert outcome.path is not None and (tmp_path / "imp.png").stat().st_size > 0
    narrow = _study(families=3)
    assert isinstance(_importance_evaluator(narrow), optuna.importance.FanovaImportanceEvaluator)
    # only the parameters asked about count
    assert isinstance(
        _importance_evaluator(wide, ["alpha"]), optuna.importance.FanovaImportanceEvaluator
    )
