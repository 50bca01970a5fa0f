"""SLURM hostlist expansion (as `scontrol show hostnames` does it) and the slurm_allocation inventory plugin."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils.hostlist import HostlistError, expand_hostlist

from ..conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(("expression", "hosts"), [
    ("node01", ["node01"]),
    ("node[01-03,07]", ["node01", "node02", "node03", "node07"]),
    ("node[8-10]", ["node8", "node9", "node10"]),
    ("node[08-10]", ["node08", "node09", "node10"]),
    ("node[007-009]", ["node007", "node008", "node009"]),
    ("node[5]", ["node5"]),
    ("a[1-2]-b[3-4]", ["a1-b3", "a1-b4", "a2-b3", "a2-b4"]),
    ("rack[1-2]n[01-02]", ["rack1n01", "rack1n02", "rack2n01", "rack2n02"]),
    ("gpu[1-2],cpu[01-02],login", ["gpu1", "gpu2", "cpu01", "cpu02", "login"]),
    ("hopper-cpu-[101-103]", ["hopper-cpu-101", "hopper-cpu-102", "hopper-cpu-103"]),
    ("n1, n2\tn3", ["n1", "n2", "n3"]),
    ("ip-10-0-0-[1-2]", ["ip-10-0-0-1", "ip-10-0-0-2"]),
    ("node[1,1-2]", ["node1", "node2"]),
])
def test_expansion(expression, hosts):
    assert expand_hostlist(expression) == hosts


@pytest.mark.parametrize(("expression", "reason"), [
    ("", "empty"),
    ("node[1-", "'[' without ']'"),
    ("node1]", "']' without '['"),
    ("node[[1]]", "brackets inside brackets"),
    ("node[a-b]", "not a number or a range"),
    ("node[3-1]", "runs backwards"),
    ("node[1-2-3]", "not a number or a range"),
    ("node[]", "not a number or a range"),
    ("a,,b", "empty name between commas"),
    ("a,b,", "ends with a comma"),
    ("[1-2]", "without a host name"),
    ("node[1-1000000]", "more than"),
])
def test_malformed_expressions_say_why(expression, reason):
    with pytest.raises(HostlistError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        expand_hostlist(expression)


def inventory(tmp_path, env=None, **config):
    path = tmp_path / "job.slurm.yml"
    path.write_text(json.dumps({"plugin": "gymfleet.cluster.slurm_allocation", **config}))
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(path), "--list"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                         "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", **(env or {})})
    return proc, (json.loads(proc.stdout) if proc.returncode == 0 else None)


def test_first_node_runs_envoy_the_rest_serve(tmp_path):
    proc, listing = inventory(tmp_path, nodelist="node[01-03]", use_scontrol=False, workers=2, runtime="systemd")
    assert proc.returncode == 0, proc.stderr
    assert listing["openenv_envoy"]["hosts"] == ["node01"]
    assert listing["openenv_worker"]["hosts"] == ["node02", "node03"]
    assert sorted(listing["cluster"]["hosts"]) == ["node01", "node02", "node03"]


def test_node_list_from_the_allocation_and_groups_renamed(tmp_path):
    proc, listing = inventory(tmp_path, env={"SLURM_JOB_NODELIST": "cpu[1-4]"}, use_scontrol=False,
                              runtime="systemd", envoy_nodes=2, envoy_group="lb", worker_group="servers",
                              compose={"ansible_host": "inventory_hostname ~ '.cluster'"})
    assert proc.returncode == 0, proc.stderr
    assert listing["lb"]["hosts"] == ["cpu1", "cpu2"] and listing["servers"]["hosts"] == ["cpu3", "cpu4"]
    host = listing["_meta"]["hostvars"]["cpu3"]["ansible_host"]
    assert host in ("cpu3.cluster", {"__ansible_unsafe": "cpu3.cluster"})  # composed values are marked unsafe


@pytest.mark.parametrize(("config", "message"), [
    ({"nodelist": "node[01-03]", "workers": 3},
     "the allocation has 3 nodes (node01, node02, node03) but 3 workers and 1 Envoy node(s) need 4; "
     "fix: for N workers allocate N+1 nodes (salloc --nodes=4) or set workers to 2"),
    ({"nodelist": "node01"}, "none left for environment servers after 1 Envoy node(s); fix: allocate at least 2"),
    ({"nodelist": "node[01-"}, "node list 'node[01-': '[' without ']'; fix: write it as SLURM does"),
    ({}, "no node list; fix: run inside a SLURM allocation (SLURM_JOB_NODELIST) or set nodelist"),
])
def test_bad_allocations_fail_with_the_fix(tmp_path, config, message):
    env = {"SLURM_JOB_NODELIST": ""}
    proc, _ = inventory(tmp_path, env=env, use_scontrol=False, runtime="systemd", **config)
    assert proc.returncode != 0
    assert message in " ".join(proc.stderr.split())


def test_scontrol_is_asked_when_it_is_on_path(tmp_path):
    # A test double of `scontrol show hostnames`: one name per line, as the real command prints them.
    double = tmp_path / "bin" / "scontrol"
    double.parent.mkdir()
    double.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 2\n'
                      'printf "from-scontrol-1\\nfrom-scontrol-2\\n"\n')
    double.chmod(0o755)
    path = f"{double.parent}:{os.environ['PATH']}"
    proc, listing = inventory(tmp_path, env={"PATH": path}, nodelist="node[1-2]", runtime="systemd")
    assert proc.returncode == 0, proc.stderr
    assert listing["openenv_envoy"]["hosts"] == ["from-scontrol-1"]
    _, builtin = inventory(tmp_path, env={"PATH": path}, nodelist="node[1-2]", use_scontrol=False, runtime="systemd")
    assert builtin["openenv_envoy"]["hosts"] == ["node1"]


def plain(value):
    """A listing's value without the marks of unsafe text that a plugin's variables carry."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    return [plain(v) for v in value] if isinstance(value, list) else value


def test_slurm_runtime_runs_everything_from_here_as_job_steps(tmp_path):
    # Names that resolve on this machine stand for the allocation's nodes.
    nodes = ["localhost", socket.gethostname()]
    proc, listing = inventory(tmp_path, env={"SLURM_JOB_NODELIST": ",".join(nodes)}, use_scontrol=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(listing["slurm_allocation"]["hosts"]) == sorted(nodes)
    assert "cluster" not in listing  # no firewall, no cluster address: nothing that needs root
    variables = plain(listing["_meta"]["hostvars"]["localhost"])
    assert variables["ansible_connection"] == "local"
    assert variables["cluster_address"] == "127.0.0.1"
    assert variables["openenv_runtime"] == variables["envoy_runtime"] == "slurm"
    assert variables["preflight_group_rules"] == [{"group": "slurm_allocation", "min": 1}]


def test_single_node_has_no_envoy(tmp_path):
    proc, listing = inventory(tmp_path, env={"SLURM_JOB_NODELIST": "localhost"}, use_scontrol=False, envoy_nodes=0)
    assert proc.returncode == 0, proc.stderr
    assert listing["openenv_worker"]["hosts"] == ["localhost"]
    assert "hosts" not in listing.get("openenv_envoy", {})


@pytest.mark.parametrize(("config", "env", "message"), [
    ({"nodelist": "localhost,gymfleet-not-a-node"}, {"SLURM_JOB_NODELIST": "localhost"},
     "node(s) gymfleet-not-a-node are not in this allocation (localhost); fix: remove nodelist from the file"),
    ({}, {"SLURM_JOB_NODELIST": "localhost,gymfleet-not-a-node.invalid"},
     "node gymfleet-not-a-node.invalid: its name does not resolve here"),
])
def test_slurm_runtime_refuses_nodes_it_cannot_use(tmp_path, config, env, message):
    proc, _ = inventory(tmp_path, env=env, use_scontrol=False, **config)
    assert proc.returncode != 0
    assert message in " ".join(proc.stderr.split())
