"""The SLURM runtime's parts that need no SLURM: step names, squeue's lines, environment files, the port hint,
and the CLI's allocation request. The runtime against a real slurmctld and slurmd is molecule's slurm scenario."""

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.openenv import openenv_status_checks, slurm_cpus
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import definition_hash, normalize
from ansible_collections.gymfleet.cluster.plugins.module_utils.slurm_steps import (
    NODE_CHECK,
    converge_steps,
    parse_step_name,
    parse_steps,
    port_hint,
    read_environment_file,
    step_name,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.status_rows import slurm_step

from gymfleet.errors import GymfleetError
from gymfleet.slurm import allocation_inventory, enter, salloc_argv


def test_a_step_name_carries_the_mark_the_service_and_the_hash():
    name = step_name("openenv", "openenv@8000", "ab12")
    assert name == "gymfleet.openenv.openenv@8000.ab12"
    assert parse_step_name(name) == ("openenv", "openenv@8000", "ab12")
    assert parse_step_name("gymfleet.redis.redis-server@6379.conf.ff") == ("redis", "redis-server@6379.conf", "ff")
    assert parse_step_name("interactive") is None, "another program's step is never ours"
    assert parse_step_name("mine.openenv.x.y") is None


def test_squeue_step_lines():
    text = "12.0|gymfleet.envoy.envoy.aa|node1\n12.1|gymfleet.openenv.openenv@8000.bb|node[2-3]\n\n12.extern|extern|\n"
    assert parse_steps(text) == [
        {"id": "12.0", "name": "gymfleet.envoy.envoy.aa", "nodes": "node1"},
        {"id": "12.1", "name": "gymfleet.openenv.openenv@8000.bb", "nodes": "node[2-3]"},
        {"id": "12.extern", "name": "extern", "nodes": ""},
    ]


def test_environment_files_are_read_as_systemd_reads_them(tmp_path):
    path = tmp_path / "env"
    path.write_text('# comment\n; another\nA=1\nB="two words"\nC=\'x\'\n\nnot a pair\nD = spaced \n')
    assert read_environment_file(str(path)) == {"A": "1", "B": "two words", "C": "x", "D": "spaced"}


def test_a_port_in_use_names_the_node_the_port_and_the_fix():
    lines = ["INFO: Started server process", "ERROR: [Errno 98] error while attempting to bind on address "
             "('10.0.0.2', 8000): address already in use"]
    hint = port_hint(lines, "node2", [8000])
    assert "port 8000 on node node2 is held by another process" in hint and "fix:" in hint
    assert port_hint(["Traceback", "ImportError: no module"], "node2", [8000]) == ""


def test_cpus_zero_keeps_the_hash_of_declarations_made_before_it_existed():
    spec = normalize({"name": "web", "argv": ["/bin/true"]})
    before = {k: v for k, v in spec.items() if k != "cpus"}
    assert definition_hash(spec, {}) == definition_hash(before, {}), "no restart of every service on upgrade"
    assert definition_hash({**spec, "cpus": 4}, {}) != definition_hash(spec, {})


@pytest.mark.parametrize(("per_task", "per_node", "cpus"), [
    ("8", "48(x3)", 8), ("", "48(x3)", 48), ("", "48,32", 48), ("", "", 1), ("0", "", 1)])
def test_workers_follow_the_runbook(per_task, per_node, cpus):
    assert slurm_cpus(per_task, per_node) == cpus


def test_a_server_without_its_step_is_down_even_when_something_answers():
    row = openenv_status_checks([8000], "10.0.0.2", "/health", "12")[0]["row"]
    steps = {"rc": 0, "stdout": "12.1|gymfleet.openenv.openenv@8000.bb|node[2-3]\n"}
    assert slurm_step("node3", row, {"steps": steps}) == (True, "; job step 12.1")
    assert slurm_step("node4", row, {"steps": steps}) == (False, "; no job step runs it")
    assert slurm_step("node3", row, {"steps": {"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id"}}) == (
        False, "; squeue: slurm_load_jobs error: Invalid job id")
    assert slurm_step("node3", {"url": "x"}, {}) == (True, ""), "a row of a systemd host"


def test_the_allocation_request_follows_the_n_plus_one_rule(tmp_path):
    path = tmp_path / "job.slurm.yml"
    path.write_text("plugin: gymfleet.cluster.slurm_allocation\nworkers: 2\n"
                    "allocate: {cpus_per_node: 48, time: '2:00:00', partition: hopper-cpu}\n")
    found, config = allocation_inventory([str(path)])
    assert found == path.resolve()
    assert salloc_argv(config, path.name) == [
        "salloc", "--no-shell", "--nodes=3", "--job-name=gymfleet-job", "--time=2:00:00", "--cpus-per-task=48",
        "--partition=hopper-cpu"]
    assert allocation_inventory([str(tmp_path)]) is None, "a directory is not the plugin's file"


@pytest.mark.parametrize(("config", "words"), [
    ({"allocate": {"time": "1:00:00"}}, "allocate needs workers"),
    ({"workers": 2, "allocate": {"nodes": 3}}, "allocate has unknown keys ['nodes']"),
    ({"workers": 2, "allocate": "3 nodes"}, "allocate must be a mapping"),
])
def test_a_bad_allocation_request_says_the_fix(config, words):
    with pytest.raises(GymfleetError, match="fix:") as refused:
        salloc_argv({"plugin": "gymfleet.cluster.slurm_allocation", **config}, "job.slurm.yml")
    assert words in str(refused.value)


def test_the_node_check_reads_the_marker_and_names_held_ports(tmp_path):
    marker = tmp_path / "marker"
    marker.write_text("token")
    with socket.socket() as holder, socket.socket() as free:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        free.bind(("127.0.0.1", 0))
        held_port, free_port = holder.getsockname()[1], free.getsockname()[1]
        free.close()
        done = subprocess.run([sys.executable, "-c", NODE_CHECK, str(marker), str(held_port), str(free_port)],
                              capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["token", f"held {held_port}"]


def test_outside_an_allocation_with_none_asked_for_says_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no allocation remembered
    path = tmp_path / "job.slurm.yml"
    path.write_text("plugin: gymfleet.cluster.slurm_allocation\nworkers: 2\n")
    with pytest.raises(GymfleetError, match="runs outside any SLURM allocation and none is asked for; fix: run it "
                                            "inside salloc"):
        enter([str(path)], may_allocate=True, log=print)
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    assert enter([str(path)], may_allocate=True, log=print) == {}, "inside salloc the plugin reads the allocation"


class RecordingRuntime:
    """Stands in for SlurmRuntime where no SLURM runs: the steps it is told run, and what it is asked to do."""

    def __init__(self, running):
        self.running, self.calls = running, []

    def check_allocation(self):
        self.calls.append("check_allocation")

    def steps(self):
        return self.running

    def digest(self, spec):
        return "d1"

    def check_node(self, ports):
        self.calls.append(("check_node", ports))

    def cancel(self, steps, deadline):
        self.calls.append(("cancel", steps))

    def launch(self, batch):
        self.calls.append(("launch", [spec["name"] for spec, _ in batch]))
        return {spec["name"]: {} for spec, _ in batch}

    def settle(self, starting):
        return set(starting)


@pytest.mark.parametrize("check_mode", [False, True])
def test_installed_only_checks_the_node_for_the_services_not_running(check_mode):
    specs = [normalize({"name": "openenv@8000", "argv": ["/bin/true"], "ports": [8000]}),
             normalize({"name": "openenv@8001", "argv": ["/bin/true"], "ports": [8001]})]
    runtime = RecordingRuntime({"openenv@8000": {"name": "openenv@8000", "id": "5.1", "digest": "old"},
                                "openenv@9": {"name": "openenv@9", "id": "5.2", "digest": "d1"}})
    module = SimpleNamespace(params={"state": "installed", "prune": True, "apply_changes": True, "timeout": 5},
                             check_mode=check_mode)
    result = converge_steps(module, runtime, specs)
    expected = ["check_allocation"] + ([] if check_mode else [("check_node", [8001])])
    assert runtime.calls == expected, "nothing is cancelled or launched, not even the stale step or the stray"
    assert not result["changed"]
    assert [(s["name"], s["stale"], s["active_state"]) for s in result["services"]] == [
        ("openenv@8000", True, "active"), ("openenv@8001", False, "inactive")]


def test_the_api_asks_for_the_allocation_on_deploy_as_the_cli_does(tmp_path, monkeypatch):
    from gymfleet import Cluster, runner, slurm

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "job.slurm.yml"
    path.write_text("plugin: gymfleet.cluster.slurm_allocation\nworkers: 2\nallocate: {time: '1:00:00'}\n")
    calls = []

    def slurm_commands(argv):
        """Test double of salloc, squeue and scancel, answering as SLURM 22.05 does."""
        calls.append(argv[0])
        answers = {"salloc": "salloc: Granted job allocation 42\n", "squeue": "RUNNING|node[1-3]\n", "scancel": ""}
        out = answers[argv[0]]
        return subprocess.CompletedProcess(argv, 0, out if argv[0] == "squeue" else "", "" if argv[0] == "squeue"
                                           else out)

    monkeypatch.setattr(slurm, "_run", slurm_commands)
    # Past the allocation, the run itself is not this test's: it stops where the inventory would be parsed.
    monkeypatch.setattr(runner, "load_inventory", lambda *_: (_ for _ in ()).throw(GymfleetError("parsed")))
    with pytest.raises(GymfleetError, match="parsed"):
        Cluster(str(path)).deploy()
    assert calls == ["salloc", "squeue"]
    assert (os.environ["SLURM_JOB_ID"], os.environ["SLURM_JOB_NODELIST"]) == ("42", "node[1-3]")
    assert json.loads(slurm.record_path(path).read_text())["job"] == "42"



def test_steps_start_as_every_runtime_starts_each_as_soon_as_what_it_comes_after_is_up():
    specs = [normalize({"name": "a", "argv": ["/bin/true"], "ports": [8000]}),
             normalize({"name": "b", "argv": ["/bin/true"], "after": ["a"]}),
             normalize({"name": "c", "argv": ["/bin/true"], "ports": [8002]})]
    stale = {"name": "c", "id": "5.3", "digest": "old"}
    runtime = RecordingRuntime({"c": stale, "gone": {"name": "gone", "id": "5.4", "digest": "d1"}})
    module = SimpleNamespace(params={"state": "started", "prune": True, "apply_changes": True, "timeout": 5,
                                     "parallel": 4}, check_mode=False)
    result = converge_steps(module, runtime, specs)
    assert runtime.calls == [
        "check_allocation", ("check_node", [8000]),
        # The stray and the stale step go first; then a and c at once, b once a is up.
        ("cancel", [{"name": "gone", "id": "5.4", "digest": "d1"}, stale]),
        ("launch", ["a", "c"]), ("launch", ["b"])]
    assert result["started"] == ["a", "b"] and result["restarted"] == ["c"] and result["removed"] == ["gone"]
