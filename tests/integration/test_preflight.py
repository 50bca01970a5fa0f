"""Bad inventories fail in preflight with one clear line each, before any host is changed."""

import json

import pytest

from conftest import LAB, ROOT, playbook

PREFLIGHT = ROOT / "playbooks" / "preflight.yml"


def failure_lines(proc):
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ({"redis_instances": [{"port": 6379}, {"port": 6379}]},
         f"host {LAB}-node1: redis instance (redis_instances[0].port = 6379) overlaps redis instance "
         "(redis_instances[1].port = 6379); fix: give each a distinct port"),
        ({"redis_instances": [{"port": 70000}]}, "is outside 1-65535"),
        ({"redis_bind_any": "no"},
         f"host {LAB}-node1: redis_bind_any is 'no', not a boolean; fix: write true or false without quotes"),
        ({"redis_maxmemory_policy": "lru"}, f"host {LAB}-node1: role redis: value of redis_maxmemory_policy"),
        ({"preflight_group_rules": [{"group": "cluster", "exactly": 5}]},
         "inventory: group cluster has 2 hosts but needs exactly 5; fix: change the hosts in [cluster]"),
        ({"redis_protected_mode": False, "redis_password": "", "firewall_state": "absent"},
         f"host {LAB}-node1: redis_protected_mode is false for port 6379 and redis_password is empty"),
        ({"python_env_kind": "conda"}, f"host {LAB}-node1: python_env_kind is conda but python_env_conda_executable"),
        ({"cluster_address_ip": "192.0.2.7"},
         f"host {LAB}-node1: cluster address 192.0.2.7 (from cluster_address_ip) is not on any interface here"),
    ],
    ids=["port-overlap", "port-range", "string-bool", "bad-choice", "group-size", "open-redis", "conda",
         "wrong-address"],
)
def test_bad_variables_fail_preflight(lab, extra_vars, expected):
    proc = playbook(PREFLIGHT, lab, "-e", json.dumps(extra_vars))
    assert proc.returncode != 0
    assert expected in " ".join(failure_lines(proc).split()), failure_lines(proc)[-3000:]


def test_duplicate_hostnames_and_addresses(lab, tmp_path):
    # A second inventory name for the same machine: the mistake registries silently suffer from.
    (tmp_path / "twin.yml").write_text(
        "all:\n  children:\n    cluster:\n      hosts:\n"
        f"        twin-of-node1: {{gymfleet_lab_container: {LAB}-node1, gymfleet_lab_ip: "
        "\"{{ hostvars['" + LAB + "-node1'].gymfleet_lab_ip }}\"}\n")
    proc = playbook(PREFLIGHT, lab, "-i", str(tmp_path / "twin.yml"))
    text = " ".join(failure_lines(proc).split())
    assert proc.returncode != 0
    assert f"hosts {LAB}-node1 and twin-of-node1 share the hostname {LAB}-node1" in text
    assert f"hosts {LAB}-node1 and twin-of-node1 share the cluster address" in text


def test_a_failed_preflight_changes_no_host(lab):
    proc = playbook(ROOT / "playbooks" / "deploy.yml", lab, "-e", json.dumps({"redis_bind_any": "yes"}))
    assert proc.returncode != 0
    assert "Install redis-server" not in proc.stdout
    assert "changed=0" in proc.stdout and "changed=1" not in proc.stdout


def test_a_clean_inventory_passes(lab):
    proc = playbook(PREFLIGHT, lab)
    assert proc.returncode == 0, proc.stdout[-3000:]
