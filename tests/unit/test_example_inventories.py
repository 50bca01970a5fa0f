"""The example inventories parse, pass their roles' variable checks and preflight, claim no port twice and
have a sound topology. Everything runs on the controller: their addresses are documentation, never targets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

EXAMPLES = sorted((ROOT / "inventories" / "examples").glob("*.yml"))
BIN = Path(sys.executable).parent

# Each role's own preflight (the roles the host's groups give it, as the preflight role picks them), fed
# what the real preflight would have learned from each host.
CHECK = """
- name: Check an example inventory without touching its hosts
  hosts: all
  gather_facts: false
  vars:
    omniboxes_registry_hostname: "{{ inventory_hostname }}"
  tasks:
    - name: Gather the controller's minimal facts in place of each host's
      ansible.builtin.setup:
        gather_subset: [min]
    - name: Stand in for the cluster_address role
      ansible.builtin.set_fact:
        cluster_address: "{{ cluster_address_ip | default(ansible_host | default('192.0.2.1')) }}"
        preflight_claims: []
        example_roles: >-
          {{ lookup('ansible.builtin.file', example_root ~ '/meta/systems.yml') | from_yaml
             | gymfleet.cluster.system_components(example_root ~ '/roles')
             | gymfleet.cluster.components_for(group_names) | selectattr('preflight') }}
    - name: Validate the variables
      gymfleet.cluster.validate_role_vars:
        role: "{{ item.role }}"
      loop: "{{ example_roles }}"
    - name: Run each role's preflight
      ansible.builtin.include_role:
        name: "gymfleet.cluster.{{ item.role }}"
        tasks_from: preflight
      loop: "{{ example_roles }}"
    - name: Check the port plan
      ansible.builtin.assert:
        that: preflight_claims | gymfleet.cluster.port_conflicts | length == 0
"""


def run(*args, **kwargs):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, env=env, cwd=ROOT,
                          **kwargs)


@pytest.mark.parametrize("inventory", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_inventory_passes_the_checks(inventory, tmp_path):
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK)
    proc = run("ansible-playbook", "-i", str(inventory), "-c", "local", "-e", f"example_root={ROOT}",
               "-e", f"ansible_python_interpreter={sys.executable}", str(playbook))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("name", "masters", "workers", "capacity"),
    [("omniboxes-2x112", 1, 2, 224), ("omniboxes-5x100", 1, 5, 500),
     ("omniboxes-dedicated-master", 1, 3, 600), ("omniboxes-advertise", 1, 3, 336)],
)
def test_example_inventory_layout(name, masters, workers, capacity):
    listing = json.loads(run("ansible-inventory", "-i", f"inventories/examples/{name}.yml", "--list").stdout)
    hostvars = listing["_meta"]["hostvars"]
    worker_hosts = listing["omniboxes_worker"]["hosts"]
    assert len(listing["omniboxes_master"]["hosts"]) == masters
    assert len(worker_hosts) == workers
    assert sum(hostvars[h]["omniboxes_instances"] for h in worker_hosts) == capacity


@pytest.mark.parametrize(
    ("name", "head", "workers", "gpus"),
    [("ray-rllib-5gpu", "platinum", ["copper", "iron", "nickel", "zinc"], 8),
     ("real-ray", "real-head", ["real-gpu1", "real-gpu2"], 16)],
)
def test_ray_example_layout(name, head, workers, gpus):
    listing = json.loads(run("ansible-inventory", "-i", f"inventories/examples/{name}.yml", "--list").stdout)
    hostvars = listing["_meta"]["hostvars"]
    assert listing["ray_head"]["hosts"] == [head]
    assert sorted(listing["ray_worker"]["hosts"]) == workers
    assert sum(hostvars[h]["ray_num_gpus"] for h in [head, *workers]) == gpus
    assert {hostvars[h]["ray_version"] for h in [head, *workers]} == {"2.60.0"}


def test_every_example_is_tested():
    assert {p.stem for p in EXAMPLES} == {"omniboxes-2x112", "omniboxes-5x100", "omniboxes-dedicated-master",
                                           "omniboxes-advertise", "ray-rllib-5gpu", "real-ray", "openenv-3node",
                                           "geomx-pseudo-distributed", "geomx-3host"}


def test_openenv_example_layout():
    listing = json.loads(run("ansible-inventory", "-i", "inventories/examples/openenv-3node.yml", "--list").stdout)
    assert listing["openenv_envoy"]["hosts"] == ["envoy-node"]
    assert sorted(listing["openenv_worker"]["hosts"]) == ["env-node1", "env-node2"]
    assert {listing["_meta"]["hostvars"][h]["openenv_workers"] for h in listing["openenv_worker"]["hosts"]} == {48}


GEOMX_CHECK = """
- name: Every process of an example, as the parameter_server role computes them
  hosts: all
  gather_facts: false
  tasks:
    - name: Stand in for the cluster_address and docker_bridge roles
      ansible.builtin.set_fact:
        cluster_address: "{{ ansible_host }}"
        docker_bridge_subnet: "172.17.{{ ansible_host.split('.') | last }}.0/24"
    - name: Write the processes
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: "{{ parameter_server_topology | gymfleet.cluster.geomx_with_addresses(dict(groups.all | zip(
                 groups.all | map('extract', hostvars) | map('gymfleet.cluster.host_address_entries'))))
                 | gymfleet.cluster.geomx_processes | to_json }}"
      run_once: true
"""


@pytest.mark.parametrize(("name", "hosts", "global_uri"), [
    ("geomx-pseudo-distributed", {"geomx-box"}, "127.0.0.1"),
    ("geomx-3host", {"host-a", "host-b", "host-c"}, "10.1.1.34"),
])
def test_geomx_examples_are_the_guides_twelve_processes(name, hosts, global_uri, tmp_path):
    playbook = tmp_path / "processes.yml"
    playbook.write_text(GEOMX_CHECK)
    out = tmp_path / "processes.json"
    proc = run("ansible-playbook", "-i", f"inventories/examples/{name}.yml", "-c", "local", "-e", f"out={out}",
               "-e", f"ansible_python_interpreter={sys.executable}", str(playbook))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    processes = json.loads(out.read_text())
    assert len(processes) == 12
    assert {p["host"] for p in processes} == hosts
    servers = [p for p in processes if p["kind"] == "server"]
    assert {p["env"]["DMLC_PS_GLOBAL_ROOT_URI"] for p in servers} == {global_uri}
    assert sorted(p["program"].split()[-1] for p in processes if p["kind"] == "worker") == ["0", "1", "2", "3"]
