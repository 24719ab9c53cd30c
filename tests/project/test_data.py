"""``Project.load_data``: the loader's return forms, validation and fingerprints."""

from __future__ import annotations

import pytest

from soma import ProjectError
from soma.project import Splits, load_project


def project_with(make_project, body: str, name: str = "proj"):
    return load_project(make_project(files={"data.py": body}, name=name))


def test_dict_form_and_fingerprint(make_project):
    project = project_with(
        make_project, "def load():\n    return {'train': ([1, 2], [0, 1]), 'valid': ([3], [1])}\n"
    )
    splits = project.load_data()
    assert splits.train == ([1, 2], [0, 1]) and splits.valid == ([3], [1]) and splits.test is None
    assert len(splits.fingerprint) == 64
    assert project.load_data().fingerprint == splits.fingerprint


def test_fingerprint_follows_the_content_and_edits_are_seen(make_project):
    project = project_with(make_project, "def load():\n    return ([1, 2], [0, 1], [3], [1])\n")
    before = project.load_data()
    project.data_path.write_text("def load():\n    return ([1, 2], [0, 1], [4], [1])\n")
    after = project.load_data()  # re-imported: same size, same second
    assert after.valid == ([4], [1])
    assert after.fingerprint != before.fingerprint


def test_tuple_forms_and_splits_instance(make_project):
    six = project_with(
        make_project, "def load():\n    return [1], [0], [2], [1], [3], [0]\n", "six"
    )
    assert six.load_data().test == ([3], [0])
    body = (
        "from soma.project import Splits\n"
        "def load():\n    return Splits(train=([1], [0]), valid=([2], [1]))\n"
    )
    splits = project_with(make_project, body, "cls").load_data()
    assert isinstance(splits, Splits) and splits.fingerprint


def test_numpy_arrays_and_describe(make_project):
    body = (
        "import numpy as np\n"
        "def load():\n"
        "    x = np.arange(20.0).reshape(10, 2); y = np.arange(10) % 2\n"
        "    return {'train': (x[:6], y[:6]), 'valid': (x[6:], y[6:])}\n"
    )
    splits = project_with(make_project, body).load_data()
    assert splits.describe() == "train 6 × 2, valid 4 × 2"


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("None", "must return {'train': (x, y), 'valid': (x, y)"),
        ("{'train': ([1], [1])}", "returned no 'valid' split"),
        ("{'train': ([1], [1]), 'validation': ([1], [1])}", "unknown split(s) 'validation'"),
        (
            "{'train': ([1, 2], [1]), 'valid': ([1], [1])}",
            "split 'train': x has 2 rows but y has 1",
        ),
        ("{'train': [1, 2, 3], 'valid': ([1], [1])}", "split 'train': expected an (x, y) pair"),
        ("{'train': ([], []), 'valid': ([1], [1])}", "split 'train': x is empty"),
        ("([1], [1], [2])", "got a tuple of 3"),
    ],
)
def test_bad_loader_results_are_named(make_project, returned, message):
    project = project_with(make_project, f"def load():\n    return {returned}\n")
    with pytest.raises(ProjectError) as info:
        project.load_data()
    assert str(info.value).startswith("data.py:load")
    assert message in str(info.value)


def test_loader_errors(make_project):
    project = project_with(make_project, "def load():\n    raise OSError('disk gone')\n", "raises")
    with pytest.raises(ProjectError, match=r"data\.py:load raised OSError: disk gone"):
        project.load_data()
    missing = project_with(make_project, "def other():\n    pass\n", "missing")
    with pytest.raises(ProjectError, match=r"data: data\.py defines no function 'load'"):
        missing.load_data()
    broken = project_with(make_project, "import numpy\nfrom nowhere_xyz import q\n", "broken")
    with pytest.raises(ProjectError, match=r"data\.py:2: ModuleNotFoundError"):
        broken.load_data()


def test_data_file_can_use_relative_imports(make_project):
    root = make_project(
        files={
            "data.py": (
                "from .helpers import rows\ndef load():\n    return rows(), [0, 1], [[3]], [1]\n"
            ),
            "helpers.py": "def rows():\n    return [[1], [2]]\n",
        }
    )
    assert load_project(root).load_data().train == ([[1], [2]], [0, 1])
