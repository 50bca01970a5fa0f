"""The real role on the lab: ReaL's cluster spec written and exported, its mistakes caught in preflight,
and the fileroot proven shared (or not) with a marker file."""

import json
import re
import subprocess

import pytest

from conftest import LAB, ROOT, VENV_BIN, ansible_env, playbook

DEPLOY = ROOT / "playbooks" / "deploy.yml"
PREFLIGHT = ROOT / "playbooks" / "preflight.yml"
NODE1, NODE2 = f"{LAB}-node1", f"{LAB}-node2"
FILEROOT = "/srv/gymfleet-real"


def inventory(tmp_path, hosts, **group_vars):
    path = tmp_path / "real.yml"
    group_vars = {"real_fileroot": FILEROOT, **group_vars}
    path.write_text(json.dumps({"all": {"children": {"real": {"hosts": hosts, "vars": group_vars}}}}))
    return path


def run(lab, tmp_path, hosts, playbook_path=DEPLOY, **group_vars):
    proc = playbook(playbook_path, lab, "-i", str(inventory(tmp_path, hosts, **group_vars)), "--tags", "always,real")
    return proc, " ".join((proc.stdout + proc.stderr).split())


def on_host(host, *command):
    return subprocess.run([str(VENV_BIN / "ansible"), "-i", f"inventories/lab/{LAB}", host,
                           "-m", "ansible.builtin.command", "-a", " ".join(command)],
                          capture_output=True, text=True, cwd=ROOT, env=ansible_env())


@pytest.fixture(scope="module")
def fileroots(lab):
    for host in (NODE1, NODE2):
        assert on_host(host, "mkdir", "-p", FILEROOT).returncode == 0
    return lab


@pytest.mark.parametrize(
    ("group_vars", "expected"),
    [
        ({"real_gpu_type_from_node_name": {"node[": "tesla"}},
         "real_gpu_type_from_node_name pattern 'node[' does not compile"),
        ({"real_cluster_type": "slurm", "real_node_type_from_node_name": {f"{LAB}-node1$": "g8"}},
         f"host {NODE2}: matches no pattern of real_node_type_from_node_name"),
        ({"real_fileroot": "relative/dir"}, "real_fileroot 'relative/dir' is not an absolute path"),
    ],
    ids=["bad-regex", "unmatched-host", "relative-fileroot"],
)
def test_bad_specs_fail_preflight(lab, tmp_path, group_vars, expected):
    proc, text = run(lab, tmp_path, {NODE1: {}, NODE2: {}}, PREFLIGHT, **group_vars)
    assert proc.returncode != 0
    assert expected in text, text[-3000:]


def test_a_fileroot_that_is_not_shared_fails(fileroots, tmp_path):
    proc, text = run(fileroots, tmp_path, {NODE1: {}, NODE2: {}})
    assert proc.returncode != 0
    expected = f"host {NODE2}: real_fileroot {FILEROOT} is not the directory {NODE1} has there"
    assert expected in text, text[-3000:]
    leftover = on_host(NODE1, "find", FILEROOT, "-name", ".gymfleet-shared-check-*")
    assert leftover.returncode == 0 and ".gymfleet-shared-check" not in leftover.stdout


def test_spec_written_exported_and_stable(fileroots, tmp_path):
    # Two inventory names for one machine: one filesystem, so the shared-fileroot check passes.
    hosts = {NODE1: {}, "twin-of-node1": {"gymfleet_lab_container": NODE1,
                                          "gymfleet_lab_ip": "{{ hostvars['" + NODE1 + "'].gymfleet_lab_ip }}"}}
    proc, text = run(fileroots, tmp_path, hosts, real_cluster_name="lab", real_node_name_prefix="itest-node")
    assert proc.returncode == 0, text[-3000:]
    spec = on_host(NODE1, "cat", "/etc/gymfleet/real/cluster.json")
    document = json.loads(spec.stdout.split("\n", 1)[1])
    assert document == {"cluster_name": "lab", "cluster_type": "ray", "fileroot": FILEROOT,
                        "node_name_prefix": "itest-node"}
    shell = on_host(NODE1, "bash", "-lc", "'echo $CLUSTER_SPEC_PATH'")
    assert shell.stdout.strip().endswith("/etc/gymfleet/real/cluster.json"), shell.stdout
    again, text = run(fileroots, tmp_path, hosts, real_cluster_name="lab", real_node_name_prefix="itest-node")
    assert again.returncode == 0 and re.search(r"changed=0 .*changed=0", text), text[-3000:]
