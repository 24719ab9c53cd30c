"""Filter discovery: isolation, per-file error reports, duplicates, reloads."""

from __future__ import annotations

import sys

from soma.project import load_project

GOOD = '''
from soma import Filter, search

class Scale(Filter):
    """Multiply by a factor.

    More text that is not the first line.
    """
    factor = search(0.1, 10.0, log=True, default=2.0)
    mode = "fast"

    def forward(self, x, state):
        return x * self.factor

class _Hidden(Filter):
    def forward(self, x, state):
        return x

class Abstract(Filter):
    """Has no forward: a base for others, not a usable filter."""
'''

USES_RELATIVE_IMPORT = """
from soma import Filter
from .good import Scale          # imported, so not collected here
from ._helpers import offset

class Shift(Filter):
    def fit(self, x, y=None):
        return offset()
    def forward(self, x, state):
        return x + state
"""

HELPERS = "def offset():\n    return 10\n"

BROKEN_SYNTAX = "from soma import Filter\n\nclass Oops(Filter)\n    pass\n"
BROKEN_IMPORT = "import os\nimport definitely_not_a_module_xyz\n"
RAISES = "from soma import Filter\n\nx = 1\nraise RuntimeError('boom at import')\n"


def test_broken_files_are_reported_and_do_not_hide_the_others(make_project):
    root = make_project(
        files={
            "filters/good.py": GOOD,
            "filters/shift.py": USES_RELATIVE_IMPORT,
            "filters/_helpers.py": HELPERS,
            "filters/a_syntax.py": BROKEN_SYNTAX,
            "filters/b_import.py": BROKEN_IMPORT,
            "filters/c_raises.py": RAISES,
        }
    )
    catalog = load_project(root).discover_filters()
    assert catalog.names() == ["Scale", "Shift"]
    assert catalog.errors == {
        "filters/a_syntax.py": "filters/a_syntax.py:3: SyntaxError: expected ':'",
        "filters/b_import.py": (
            "filters/b_import.py:2: ModuleNotFoundError: "
            "No module named 'definitely_not_a_module_xyz'"
        ),
        "filters/c_raises.py": "filters/c_raises.py:4: RuntimeError: boom at import",
    }


def test_filter_info_describes_each_filter(make_project):
    root = make_project(
        files={
            "filters/good.py": GOOD,
            "filters/shift.py": USES_RELATIVE_IMPORT,
            "filters/_helpers.py": HELPERS,
        }
    )
    catalog = load_project(root).discover_filters()
    scale = catalog["Scale"]
    assert scale.file == "filters/good.py"
    assert scale.line == 4
    assert scale.doc == "Multiply by a factor."
    assert scale.params == {
        "factor": {
            "type": "float",
            "low": 0.1,
            "high": 10.0,
            "log": True,
            "step": None,
            "default": 2.0,
        },
        "mode": "fast",
    }
    assert scale.stateless and scale.inputs == 1
    assert scale.cls(factor=3.0).forward(2.0, None) == 6.0
    shift = catalog["Shift"]
    assert shift.doc == ""  # no docstring of its own (Filter's is not inherited)
    assert not shift.stateless
    assert shift.cls().fit([1]) == 10  # the relative import of a helper worked
    assert catalog.to_dict()["filters"][0]["name"] == "Scale"


def test_unknown_filter_lookup_suggests(make_project):
    catalog = load_project(make_project(files={"filters/good.py": GOOD})).discover_filters()
    try:
        catalog["Scal"]
    except Exception as exc:
        assert "unknown filter 'Scal' (did you mean 'Scale'?)" in str(exc)
    else:
        raise AssertionError("expected a ProjectError")


def test_duplicate_names_across_files_are_errors(make_project):
    other = (
        "from soma import Filter\n\n"
        "class Scale(Filter):\n    def forward(self, x, s):\n        return x\n"
    )
    root = make_project(files={"filters/good.py": GOOD, "filters/other.py": other})
    catalog = load_project(root).discover_filters()
    assert "Scale" not in catalog
    expected = "filter 'Scale' is defined in filters/good.py and filters/other.py; rename one"
    assert expected in catalog.errors["filters/good.py"]
    assert expected in catalog.errors["filters/other.py"]


def test_two_projects_with_the_same_file_names_do_not_collide(make_project):
    body = (
        "from soma import Filter\n\n"
        "class Const(Filter):\n    def forward(self, x, s):\n        return {v}\n"
    )
    a = load_project(make_project(files={"filters/f.py": body.format(v=1)}, name="a"))
    b = load_project(make_project(files={"filters/f.py": body.format(v=2)}, name="b"))
    const_a = a.discover_filters()["Const"].cls
    const_b = b.discover_filters()["Const"].cls
    assert const_a is not const_b
    assert const_a.__module__ != const_b.__module__
    assert (const_a().forward(0, None), const_b().forward(0, None)) == (1, 2)
    # Nothing was imported under a plain top-level name that another project could shadow.
    assert not any(k == "f" or k.startswith("filters") for k in sys.modules)


def test_discovery_is_cached_until_a_file_changes(make_project):
    root = make_project(files={"filters/good.py": GOOD})
    project = load_project(root)
    first = project.discover_filters()
    assert load_project(root).discover_filters() is first  # same folder, unchanged
    # Rewrite with the same size immediately: stale bytecode must not be served.
    path = root / "filters" / "good.py"
    path.write_text(GOOD.replace("default=2.0", "default=3.0"), encoding="utf-8")
    second = project.discover_filters()
    assert second is not first
    assert second["Scale"].cls().factor == 3.0
    assert first["Scale"].cls().factor == 2.0  # classes already handed out stay valid
    assert not (root / "filters" / "__pycache__").exists()
    assert project.discover_filters(refresh=True) is not second


def test_added_and_removed_files_are_noticed(make_project):
    root = make_project(files={"filters/good.py": GOOD})
    project = load_project(root)
    assert project.discover_filters().names() == ["Scale"]
    (root / "filters" / "shift.py").write_text(USES_RELATIVE_IMPORT, encoding="utf-8")
    (root / "filters" / "_helpers.py").write_text(HELPERS, encoding="utf-8")
    assert project.discover_filters().names() == ["Scale", "Shift"]
    (root / "filters" / "shift.py").unlink()
    assert project.discover_filters().names() == ["Scale"]


def test_a_broken_dependency_is_reported_for_the_importing_file(make_project):
    root = make_project(
        files={
            "filters/good.py": GOOD,
            "filters/uses_broken.py": "from .z_broken import X\n",
            "filters/z_broken.py": "def x(:\n",
        }
    )
    errors = load_project(root).discover_filters().errors
    assert errors["filters/uses_broken.py"].startswith("filters/z_broken.py:1: SyntaxError")
    assert errors["filters/z_broken.py"].startswith("filters/z_broken.py:1: SyntaxError")


def test_file_names_that_are_not_identifiers(make_project):
    root = make_project(files={"filters/good.py": GOOD, "filters/my-filters.py": GOOD})
    catalog = load_project(root).discover_filters()
    assert "not a valid module name" in catalog.errors["filters/my-filters.py"]
    assert catalog.names() == ["Scale"]


def test_a_module_calling_sys_exit_is_reported(make_project):
    root = make_project(files={"filters/quit.py": "import sys\nsys.exit(3)\n"})
    catalog = load_project(root).discover_filters()
    assert catalog.errors == {"filters/quit.py": "filters/quit.py:2: SystemExit: 3"}


def test_concurrent_discovery_agrees(make_project):
    from concurrent.futures import ThreadPoolExecutor

    root = make_project(
        files={
            "filters/good.py": GOOD,
            "filters/shift.py": USES_RELATIVE_IMPORT,
            "filters/_helpers.py": HELPERS,
        }
    )
    projects = [load_project(root) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        catalogs = list(pool.map(lambda p: p.discover_filters(refresh=True), projects * 3))
    for catalog in catalogs:
        assert catalog.errors == {}
        assert catalog.names() == ["Scale", "Shift"]
        assert catalog["Shift"].cls().fit([0]) == 10


OUTSIDE = """
from soma import Filter

IMPORTED = []
IMPORTED.append(1)

class Evil(Filter):
    def forward(self, x, state):
        return x
"""


def test_regression_a_link_leading_out_of_filters_is_not_imported(make_project, tmp_path):
    # read/write refused such a link, but discovery imported, listed and ran it.
    import os

    outside = tmp_path / "elsewhere" / "evil.py"
    outside.parent.mkdir()
    outside.write_text(OUTSIDE)
    root = make_project(files={"filters/good.py": GOOD})
    os.symlink(outside, root / "filters" / "evil.py")
    catalog = load_project(root).discover_filters()
    assert "Evil" not in catalog
    assert "outside the filters folder" in catalog.errors["filters/evil.py"]
    assert not any(m.endswith(".evil") for m in sys.modules)
    assert "Scale" in catalog.names()  # the rest of the folder is discovered as before
