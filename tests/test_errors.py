"""Errors keep their fields across pickling (they cross process boundaries)."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import cloudpickle

from soma.errors import ExecutionError, ValidationError


def test_execution_error_survives_pickle_with_node_phase_and_cause() -> None:
    error = ExecutionError("scale", "fit", ZeroDivisionError("division by zero"))
    for dumps in (pickle.dumps, cloudpickle.dumps):
        back = pickle.loads(dumps(error))
        assert isinstance(back, ExecutionError)
        assert back.node == "scale"
        assert back.phase == "fit"
        assert isinstance(back.cause, ZeroDivisionError)
        assert str(back) == str(error)


def test_validation_error_survives_pickle_with_field() -> None:
    error = ValidationError("params.alpha", "expected a number, got 'x'")
    back = pickle.loads(pickle.dumps(error))
    assert back.field == "params.alpha"
    assert str(back) == "params.alpha: expected a number, got 'x'"


# The packages whose modules may define SomaError subclasses: the core and the faces.
_PACKAGES = ("soma", "soma_tools", "soma_agent", "soma_mcp", "soma_tui")

_COLLECT = f"""
import importlib, json, pkgutil
from soma.errors import SomaError
failed = []
for package in {_PACKAGES!r}:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue  # running `python -m soma.cli`, not a module to import
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{{info.name}}: {{type(exc).__name__}}: {{exc}}")
assert not failed, "modules that do not import: " + "; ".join(failed)
found, todo, seen = {{}}, [SomaError], set()
while todo:
    for sub in todo.pop().__subclasses__():
        if sub in seen:
            continue  # reached again through a second base (RemoteNodeError)
        seen.add(sub)
        if sub.__module__.split(".")[0] in {_PACKAGES!r}:  # not a test's own subclass
            bases = [b.__name__ for b in sub.__bases__ if issubclass(b, SomaError)]
            found.setdefault(sub.__name__, []).append([sub.__module__, bases])
            todo.append(sub)
print(json.dumps(found))
"""


def _tree(docstring: str) -> dict[str, str]:
    """{class: parent} as drawn in the docstring's tree (indent 4 per level)."""
    parents: dict[str, str] = {}
    stack = ["SomaError"]
    for line in docstring.splitlines():
        match = re.match(r"^( {4}(?:[│ ] {3})*)[├└]── (\w+)", line)
        if match is None:
            continue
        depth = (len(match.group(1)) - 4) // 4
        del stack[depth + 1 :]
        parents[match.group(2)] = stack[depth]
        stack.append(match.group(2))
    return parents


def test_the_hierarchy_docstring_names_every_soma_error() -> None:
    import soma.errors

    result = subprocess.run(
        [sys.executable, "-c", _COLLECT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, list[list]] = json.loads(result.stdout)
    assert len(found) > 20, found  # the walk reached the subpackages and the faces
    clashes = {name: where for name, where in found.items() if len(where) > 1}
    assert not clashes, f"two SomaError subclasses share a name: {clashes}"
    drawn = _tree(soma.errors.__doc__ or "")
    missing = sorted(set(found) - set(drawn))
    assert not missing, f"SomaError subclasses missing from soma/errors.py's tree: {missing}"
    stale = sorted(set(drawn) - set(found))
    assert not stale, f"soma/errors.py's tree names classes that do not exist: {stale}"
    for name, [[module, bases]] in found.items():
        assert drawn[name] in bases, f"{name} ({module}) is drawn under {drawn[name]}, not {bases}"


def test_the_tree_reader_reads_depth() -> None:
    doc = "    SomaError\n    ├── A  x\n    │   └── B  y\n    │       └── C\n    └── D\n"
    assert _tree(doc) == {"A": "SomaError", "B": "A", "C": "B", "D": "SomaError"}
