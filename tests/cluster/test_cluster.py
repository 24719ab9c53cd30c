"""A real cluster (coordinator + two workers tagged differently) in a loopback-only namespace.

The scenario runs once per module (Ray nodes are heavy on a 2-core machine) in its own
network namespace, HOME and Ray temp dirs; each test checks one finding of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

HERE = Path(__file__).parent


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare for a private netns"),
]


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("cluster") / "findings.json"
    script = f"ip link set lo up; exec {sys.executable} {HERE / '_scenario.py'} {out}"
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    if not out.exists():
        pytest.fail(
            f"the cluster scenario wrote nothing:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return json.loads(out.read_text())


def test_scenario_ran_to_its_end(findings: dict) -> None:
    assert "crash" not in findings, findings["crash"]


def test_scenario_ran_in_a_loopback_only_namespace(findings: dict) -> None:
    assert findings["interfaces"] == ["lo"]


def test_wrong_and_missing_token_refused_fast_and_clearly(findings: dict) -> None:
    assert "refused a wrong token" in findings["token_wrong"]
    assert "refused no token" in findings["token_missing"]
    assert findings["token_wrong_s"] < 2.0 and findings["token_missing_s"] < 2.0
    assert findings["token_file_mode"] == "0o600"


def test_tag_routing_runs_on_the_tagged_worker(findings: dict) -> None:
    assert findings["gpu_tag_workers"] == ["tagged"]


def test_max_concurrent_is_enforced(findings: dict) -> None:
    assert findings["tagged_max_overlap"] == 1  # 4 jobs of 0.4 s, --max-concurrent 1


def test_user_error_names_the_job_and_the_worker(findings: dict) -> None:
    assert (
        findings["error"]
        == "RemoteTaskError: fail_here failed on worker 'plain': ValueError: bad input"
    )


def test_job_environment_from_a_local_wheelhouse(findings: dict) -> None:
    assert findings["env_answer"] == 42
    assert len(findings["env_key"]) == 16
    assert findings["env_error"].startswith("ClusterError: uses_tiny_package: its environment")
    assert "failed to install" in findings["env_error"]
    # pip's own words, naming the requirement, not Ray's long virtualenv command line
    assert "No matching distribution found for nosuchpkg==9" in findings["env_error"]
    assert "virtualenv/bin/python" not in findings["env_error"]


def test_cluster_status_output(findings: dict) -> None:
    status = findings["status_json"]
    assert isinstance(status, dict), status
    workers = {n["name"]: n for n in status["nodes"] if n["role"] == "worker"}
    assert set(workers) == {"tagged", "plain"}
    assert workers["tagged"]["tags"] == ["gpu"] and workers["tagged"]["slots"] == 1
    assert workers["plain"]["tags"] == ["big-ram"] and workers["plain"]["slots"] == 2
    assert [n["role"] for n in status["nodes"]].count("coordinator") == 1
    assert status["workers_alive"] == 2 and status["workers_dead"] == 0
    text = findings["status_text"]
    assert "2 worker(s) alive, 0 dead" in text and "tagged" in text and "big-ram" in text


def test_remote_step_runs_on_the_tagged_worker_and_a_cached_node_stays_here(
    findings: dict,
) -> None:
    assert findings["plan_text"] == "Remote(center @ tag:gpu, cached)"  # one node: no Sequence
    assert findings["remote_values"] == [-1.0, 0.0, 1.0]
    assert findings["remote_ran_on"] == "tagged"
    assert findings["remote_events_1"] == [["node_finished", "center", "tagged"]]
    # Second run: served from the driver's cache, no job dispatched (no worker named).
    assert findings["remote_events_2"] == [["node_finished", "center", None]]
    assert findings["remote_status_2"] == "cached"
    assert findings["backend_ran_on"] == "plain"  # Graph(backend=lab.backend())


def test_remote_node_errors_name_the_node_and_the_worker(findings: dict) -> None:
    assert findings["remote_error"] == (
        "RemoteNodeError: node 'boom' failed during fit on worker 'plain': ValueError: bad input"
    )
    assert findings["remote_error_worker"] == "plain"
    assert findings["infeasible_error"].startswith(
        "ExecutionError: node 'center' failed during fit: ClusterError: node 'center': "
        "no alive worker has tag:tpu (workers: "
    )
    assert "tag:gpu" in findings["infeasible_error"] and findings["infeasible_s"] < 2.0


def test_data_refs_travel_as_references_and_the_worker_reads_them(findings: dict) -> None:
    assert findings["ref_ran_on"] == "plain"
    assert findings["ref_first_values"] == [-49999.5, -49998.5]  # centred on the worker
    assert findings["ref_driver_reads"] == 0  # the driver never read the store
    assert findings["ref_driver_reads_local"] == 1  # while a local node's run does


def test_a_remote_run_can_be_cancelled(findings: dict) -> None:
    assert findings["cancel_error"] == (
        "ExecutionError: node 'slow' failed during forward: ClusterError: node 'slow' was cancelled"
    )
    assert findings["cancel_s"] < 5.0  # cancelled after 1 s; the node sleeps 60 s


def test_study_across_two_workers_records_every_trial_once(findings: dict) -> None:
    assert findings["study_counts"].get("ok") == 8 and sum(findings["study_counts"].values()) == 8
    stored = findings["study_stored"]
    assert sorted(t["number"] for t in stored) == list(range(8))
    assert {t["state"] for t in stored} == {"COMPLETE"}
    assert {t["worker"] for t in stored} == {"tagged", "plain"}


def test_worker_killed_mid_study_trials_rerun_elsewhere_nothing_twice_status_dead(
    findings: dict,
) -> None:
    stored = findings["killed_stored"]
    assert sorted(t["number"] for t in stored) == list(range(10))  # each trial once
    assert findings["killed_counts"].get("ok") == 10, findings["killed_errors"]
    assert {t["state"] for t in stored} == {"COMPLETE"}
    assert "plain" in {t["worker"] for t in stored}  # it had taken trials before the kill
    assert findings["running_on_plain_at_kill"] >= 1  # killed with a trial in flight
    assert findings["health_after_kill"]["workers_dead"] == 1
    assert findings["health_after_kill"]["workers_alive"] == 1
    nodes = {n["name"]: n for n in findings["status_after_kill"]["nodes"]}
    assert nodes["plain"]["alive"] is False and nodes["tagged"]["alive"] is True


def test_everything_stopped_by_pid(findings: dict) -> None:
    assert findings["stopped_coordinator"] > 0
    assert findings["leftover"] == 0


def test_project_cluster_address_sends_the_tools_experiments_to_the_cluster(
    findings: dict,
) -> None:
    tools = findings["tools"]
    assert isinstance(tools, dict), tools
    # The project's filters (a synthetic package a worker cannot import) went by value.
    assert tools["pipeline_worker"] in ("tagged", "plain")
    assert tools["kb_status"] == "ok" and 0.0 < tools["value"] <= 1.0
    assert tools["study_trials"] == 3 and tools["study_workers"]


def test_project_cluster_address_sends_the_agents_experiments_to_the_cluster(
    findings: dict,
) -> None:
    tools = findings["tools"]
    assert isinstance(tools, dict), tools
    assert tools["agent_experiments"] >= 1
    # Every experiment of the agent's run was a job on a worker (a pipeline or a trial).
    assert len(tools["agent_jobs"]) >= tools["agent_experiments"]
    assert set(tools["agent_jobs"]) <= {"experiment", "trial"}
    assert tools["agent_workers"] and set(tools["agent_workers"]) <= {"tagged", "plain"}


def test_pbt_members_train_in_actors_on_both_workers(findings: dict) -> None:
    assert findings["pbt_members"] == 4 and findings["pbt_errors"] == []
    assert findings["pbt_workers"] == ["plain", "tagged"]
    assert findings["pbt_best"] < 9.0  # mse of the untrained state (0 vs 3) is 9


def test_a_driver_can_send_its_soma_to_the_workers(findings: dict) -> None:
    shipped = findings["shipped"]
    assert isinstance(shipped, dict), shipped
    assert shipped["ships"] is True
    # The worker imported the copy Ray unpacked from the driver, not its own install.
    assert "runtime_resources" in shipped["worker_soma"], shipped["worker_soma"]
