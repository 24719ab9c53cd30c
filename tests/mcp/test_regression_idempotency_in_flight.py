"""Issue 18, item 4: the same idempotency_key sent twice at once fitted the pipeline twice
(a live first attempt looked like a dead one). Now the second call waits for the first and
returns its result."""

from __future__ import annotations

import threading
from pathlib import Path

from mcp_helpers import make_project

import soma_tools as T

_SLOW = '''
import time

from soma import Filter


class SlowFit(Filter):
    """Logs each fit and takes long enough for a second call to arrive meanwhile."""

    def fit(self, x, y=None):
        with open({log!r}, "a") as f:
            f.write("fit\\n")
        time.sleep(0.6)
        return 1

    def forward(self, x, state):
        return x
'''


def test_regression_same_key_twice_at_once_fits_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "digits")
    log = tmp_path / "fits.log"
    (project / "filters" / "slow.py").write_text(_SLOW.format(log=str(log)))
    ctx = T.ToolContext(project, embedder="hashing")
    try:
        inp = T.RunPipelineInput(spec="SlowFit() >> LogReg(C=1.0)", idempotency_key="twice-at-once")
        outs: list[T.RunPipelineOutput] = []
        errors: list[BaseException] = []

        def call() -> None:
            try:
                outs.append(T.run_pipeline(ctx, inp))
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(outs) == 2
        assert log.read_text().count("fit") == 1  # the pipeline's fit ran once
        assert outs[0].experiment_id == outs[1].experiment_id
        assert sorted(o.replayed for o in outs) == [False, True]
        assert outs[0].value == outs[1].value
        assert ctx.kb.count() == 1 and ctx.kb.get(outs[0].experiment_id).status == "ok"
    finally:
        ctx.close()
