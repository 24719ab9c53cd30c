"""Issue 17, item 3: ``soma study run "SPEC" -p PROJECT`` tunes a spec over the project's
data, filters and metrics, recording into the project's line (as run_study does)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import soma

from soma.knowledge import HashingEmbedder, KnowledgeBase
from soma.project import load_project


def test_regression_study_run_takes_a_spec_and_the_project(digits_project: Path) -> None:
    p = str(digits_project)
    code, out = soma(
        "study", "run", "StandardScale() >> LogReg()", "-p", p, "-n", "2", "--seed", "0",
        "--sampler", "random", "--embedder", "hashing", "--json",
    )  # fmt: skip
    assert code == 0, out
    result = json.loads(out[out.index("{") :])
    assert result["directions"] == ["maximize"] and len(result["trials"]) == 2
    project = load_project(digits_project)
    with KnowledgeBase(project.kb_path, embedder=HashingEmbedder()) as kb:
        experiments = kb.experiments(line=project.name)
        assert len(experiments) == 2
        fingerprint = project.load_data().fingerprint
        for e in experiments:
            # Every metric soma.toml declares (item 6), on the project's own data.
            assert set(e.metrics) == {"accuracy", "f1_macro"}, e.metrics
            assert e.data_fingerprint == fingerprint and e.origin == "study"


def test_regression_study_run_spec_errors_name_the_field(digits_project: Path) -> None:
    p = str(digits_project)
    code, out = soma("study", "run", "StandardScale() >> LogReg()", "-p", p, "-m", "acc")
    assert code == 1
    assert "--metric: the project computes no metric 'acc'" in out and "f1_macro" in out
    code, out = soma("study", "run", "StandardScale() >> Svc()", "-p", p, "--no-kb")
    assert code == 1 and "unknown filter 'Svc'" in out
    code, out = soma("study", "run", "missing.py", "-p", p)
    assert code == 1 and "missing.py" in out
    code, out = soma("study", "run", "StandardScale() >> LogReg()", "-p", p, "--embedder", "x")
    assert code == 1 and "--embedder: expected default, minilm or hashing" in out
