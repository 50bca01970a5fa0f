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


def omniboxes_inventory(tmp_path, masters, workers, host_vars=None, extra_hosts=""):
    """OmniBoxes groups over the lab's hosts, with the registry off 6379, which the lab's redis group holds."""
    def group(hosts):
        return "".join(f"        {h}: {json.dumps((host_vars or {}).get(h, {}))}\n" for h in hosts) or "        {}\n"

    path = tmp_path / "omniboxes.yml"
    path.write_text(
        "all:\n  vars:\n    omniboxes_master_redis_port: 6479\n    omniboxes_instances: 2\n  children:\n"
        f"    omniboxes_master:\n      hosts:\n{group(masters)}"
        f"    omniboxes_worker:\n      hosts:\n{group(workers)}" + extra_hosts)
    return path


@pytest.mark.parametrize(
    ("masters", "workers", "host_vars", "expected"),
    [
        ([f"{LAB}-node1"], [f"{LAB}-node1"], {f"{LAB}-node1": {"omniboxes_instance_start_port": 8000,
                                                               "omniboxes_instances": 100}},
         f"host {LAB}-node1: omniboxes instance servers (omniboxes_instance_start_port + omniboxes_instances = "
         "8000-8099) overlaps omniboxes node server (omniboxes_node_port = 8080); fix: give each a distinct port"),
        ([f"{LAB}-node1", f"{LAB}-node2"], [f"{LAB}-node2"], {},
         f"inventory: hosts {LAB}-node1 and {LAB}-node2 are all in omniboxes_master, but OmniBoxes has exactly one "
         "master; fix: keep one host in [omniboxes_master]"),
        ([], [f"{LAB}-node2"], {},
         f"inventory: hosts {LAB}-node2 are in omniboxes_worker but no host is in omniboxes_master"),
        ([f"{LAB}-node1"], [f"{LAB}-node2"], {f"{LAB}-node2": {"omniboxes_instances": 0}},
         f"host {LAB}-node2: omniboxes_instances is 0 but the host is in omniboxes_worker; fix: set it"),
        ([f"{LAB}-node1"], [f"{LAB}-node2"], {f"{LAB}-node2": {"omniboxes_advertise_ip": "127.0.0.1"}},
         f"host {LAB}-node2: the node would register as http://127.0.0.1:8080, which the master cannot reach; "
         "fix: set omniboxes_advertise_ip"),
        ([f"{LAB}-node1"], [f"{LAB}-node2"], {f"{LAB}-node2": {"omniboxes_master_redis_host": "localhost"}},
         f"host {LAB}-node2: the registry Redis would be localhost, which is not the master from this worker"),
        ([f"{LAB}-node1"], [f"{LAB}-node1"], {f"{LAB}-node1": {"omniboxes_master_redis_port": 6379}},
         f"host {LAB}-node1: redis instance (redis_instances[0].port = 6379) overlaps omniboxes registry redis "
         "(omniboxes_master_redis_port = 6379)"),
    ],
    ids=["port-overlap", "two-masters", "no-master", "no-instances", "loopback-advertise", "loopback-registry",
         "registry-vs-redis"],
)
def test_bad_omniboxes_inventories_fail_preflight(lab, tmp_path, masters, workers, host_vars, expected):
    proc = playbook(PREFLIGHT, lab, "-i", str(omniboxes_inventory(tmp_path, masters, workers, host_vars)))
    assert proc.returncode != 0
    assert expected in " ".join(failure_lines(proc).split()), failure_lines(proc)[-3000:]


def test_omniboxes_workers_sharing_a_hostname_fail_preflight(lab, tmp_path):
    twin = (f"    cluster:\n      hosts:\n        twin-of-node2: {{gymfleet_lab_container: {LAB}-node2, "
            "gymfleet_lab_ip: \"{{ hostvars['" + LAB + "-node2'].gymfleet_lab_ip }}\"}\n")
    inventory = omniboxes_inventory(tmp_path, [f"{LAB}-node1"], [f"{LAB}-node2", "twin-of-node2"], extra_hosts=twin)
    text = " ".join(failure_lines(playbook(PREFLIGHT, lab, "-i", str(inventory))).split())
    assert f"hosts {LAB}-node2 and twin-of-node2 share the OmniBoxes registry hostname {LAB}-node2" in text


def test_a_clean_omniboxes_inventory_passes(lab, tmp_path):
    inventory = omniboxes_inventory(tmp_path, [f"{LAB}-node1"], [f"{LAB}-node1", f"{LAB}-node2"])
    proc = playbook(PREFLIGHT, lab, "-i", str(inventory))
    assert proc.returncode == 0, proc.stdout[-3000:]
