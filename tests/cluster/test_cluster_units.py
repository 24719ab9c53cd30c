"""Fast checks of the cluster face that need no running cluster."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soma.cluster import CoordinatorUnreachable
from soma.cluster._jobs import Placement, environment_for, task_options
from soma.cluster._token import verify_token, write_token
from soma.cluster._units import parse_memory, parse_tags
from soma.cluster.capabilities import detect
from soma.errors import ValidationError


def test_import_soma_never_imports_ray() -> None:
    code = "import soma, soma.cluster, soma.cli._groups, sys; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8G", 8 << 30), ("8GB", 8 << 30), ("8GiB", 8 << 30), ("512m", 512 << 20), ("100", 100)],
)
def test_memory_in_binary_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["0", "0G", "eight", "8 XB", "-1G", "0.0001K"])
def test_memory_rejected_clearly_never_zero(text: str) -> None:
    with pytest.raises(ValidationError, match="--memory"):
        parse_memory(text)


def test_tags_parsed_and_checked() -> None:
    assert parse_tags("gpu, big-ram,gpu") == ["big-ram", "gpu"]
    with pytest.raises(ValidationError, match="--tags"):
        parse_tags("gpu,no spaces")


def test_placement_becomes_ray_resources() -> None:
    options = task_options(Placement({"GPU": 1, "memory": "1G"}, ["gpu"]), retries=2)
    assert options["num_gpus"] == 1.0 and options["num_cpus"] == 1.0
    assert options["memory"] == float(1 << 30)
    assert options["resources"] == {"soma_slot": 1.0, "tag:gpu": 1.0}
    assert options["max_retries"] == 2 and options["retry_exceptions"] is False
    with pytest.raises(ValidationError, match=r"resources\['GPU'\]"):
        Placement({"GPU": -1})


def test_environment_keyed_by_requirements_hash(tmp_path: Path) -> None:
    first = environment_for(["b==1", "a==2"], tmp_path)
    again = environment_for(["a==2", "b==1"], tmp_path)
    other = environment_for(["a==3"], tmp_path)
    assert first is not None and again is not None and other is not None
    assert first[0] == again[0] != other[0]
    assert first[1]["pip"]["pip_install_options"] == ["--no-index", "--find-links", str(tmp_path)]
    assert environment_for(None, None) is None
    with pytest.raises(ValidationError, match="wheelhouse"):
        environment_for(["a"], tmp_path / "missing")


def test_token_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "c" / "token"
    path.parent.mkdir()
    path.write_text("old")
    os.chmod(path, 0o644)
    write_token(path, "secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "secret"


def test_token_check_of_a_dead_address_is_fast_and_clear() -> None:
    started = time.perf_counter()
    with pytest.raises(CoordinatorUnreachable, match=r"no coordinator answered at 127\.0\.0\.1:9"):
        verify_token("127.0.0.1:9", "t", timeout=1.0)
    assert time.perf_counter() - started < 2.0


def test_capabilities_detected() -> None:
    found = detect()
    assert found.cpus >= 1 and found.memory_bytes > 0
    assert found.python == ".".join(map(str, sys.version_info[:3]))
    assert found.gpus or found.gpu_note  # no GPU says why


def test_worker_cli_rejects_bad_memory_before_starting_anything(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "soma.cli", "worker", "start", "--address", "127.0.0.1:9",
         "--memory", "lots"], capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "--memory" in done.stderr and "binary units" in done.stderr


def test_a_failed_environment_reports_pips_own_error_lines() -> None:
    from soma.cluster._jobs import _install_error

    ray_report = (
        "ray._private.runtime_env.utils.SubprocessCalledProcessError: Run cmd[3] failed.\n"
        "Command '['/tmp/ray/session/runtime_resources/pip/abc/virtualenv/bin/python', '-m', "
        "'pip', 'install', ...]' returned non-zero exit status 1.\n"
        "Last 50 lines of stdout:\n    Looking in links: /wheels\n"
        "    ERROR: Could not find a version that satisfies the requirement nosuchpkg==9\n"
        "    ERROR: No matching distribution found for nosuchpkg==9"
    )
    assert _install_error(ray_report) == (
        "ERROR: Could not find a version that satisfies the requirement nosuchpkg==9; "
        "ERROR: No matching distribution found for nosuchpkg==9"
    )
    assert _install_error("virtualenv could not be created\nno space left") == (
        "virtualenv could not be created\nno space left"
    )


def test_workers_with_another_soma_version_are_named() -> None:
    from soma.cluster.lab import other_soma_versions

    workers = [
        {"name": "same", "alive": True, "soma_version": "0.1.0"},
        {"name": "old", "alive": True, "soma_version": "0.0.9"},
        {"name": "bare-ray", "alive": True, "soma_version": ""},
        {"name": "gone", "alive": False, "soma_version": "0.0.1"},
    ]
    assert other_soma_versions(workers, "0.1.0") == ["old (0.0.9)", "bare-ray (unknown)"]
    assert other_soma_versions(workers[:1], "0.1.0") == []
