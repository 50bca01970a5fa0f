"""Inventory from a SLURM allocation: the first node(s) run Envoy, the others the environment servers."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: slurm_allocation
short_description: Hosts and groups from a SLURM allocation's node list
version_added: 0.1.0
author: gymfleet developers
description:
  - Reads a SLURM node list (O(nodelist), by default C(SLURM_JOB_NODELIST) inside C(salloc) or C(sbatch)) and
    expands it as C(scontrol show hostnames) does - C(node[01-03,07]), several bracket groups
    (C(a[1-2]-b[3-4])), zero padding, comma lists.
  - Uses C(scontrol show hostnames) when it is on C(PATH) and O(use_scontrol) is true, the built-in expansion
    otherwise; both give the same list.
  - The first O(envoy_nodes) hosts go to O(envoy_group), the rest to O(worker_group), all of them to
    O(cluster_group).
  - With O(workers), the allocation must hold exactly O(workers) + O(envoy_nodes) nodes - the runbook's rule
    "for N workers allocate N+1 nodes".
  - A malformed node list, or too few nodes, fails with the reason and the fix.
  - With O(runtime=slurm) (the default) the hosts are the allocation's nodes as a SLURM user sees them; gymfleet
    runs every task on the node it runs on (C(ansible_connection=local)), the services run as job steps there
    (C(openenv_runtime) and C(envoy_runtime) are C(slurm)), each host's C(cluster_address) is its node name's
    address, and the hosts join O(cluster_group) but not C(cluster), so nothing needing root (the firewall, the
    cluster address) runs on them.
  - With O(runtime=slurm), a node list given in the file must lie within the allocation's (C(SLURM_JOB_NODELIST)).
  - O(envoy_nodes=0) is the runbook's single-node case: every host runs environment servers, and there is no Envoy.
  - The file must be named C(*.slurm.yml) or C(*.slurm.yaml).
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [gymfleet.cluster.slurm_allocation]
  nodelist:
    description: The node list, such as C(node[01-03]).
    type: str
    env:
      - name: SLURM_JOB_NODELIST
  use_scontrol:
    description: Ask C(scontrol show hostnames) when it is on C(PATH).
    type: bool
    default: true
  envoy_nodes:
    description: How many hosts, from the front of the list, run Envoy; 0 runs servers alone (no Envoy).
    type: int
    default: 1
  runtime:
    description: How the services run, C(slurm) (job steps of the allocation, as its user) or C(systemd) (units on
      hosts gymfleet reaches over SSH as root).
    type: str
    choices: [slurm, systemd]
    default: slurm
  allocation_nodelist:
    description: The allocation's own node list, which a O(nodelist) given in the file must lie within.
    type: str
    env:
      - name: SLURM_JOB_NODELIST
  allocate:
    description:
      - What C(gymfleet deploy) asks SLURM for when it runs outside an allocation (C(salloc --no-shell)), C(gymfleet
        stop) giving it back; the node count is O(workers) + O(envoy_nodes). Read by the CLI, not by this plugin.
    type: dict
    suboptions:
      cpus_per_node: {description: C(--cpus-per-task)., type: int}
      time: {description: C(--time)., type: str, default: "1:00:00"}
      partition: {description: C(--partition); the cluster's default when unset., type: str}
  workers:
    description: The number of environment-server hosts the experiment needs; unset accepts any number (at least one).
    type: int
  envoy_group:
    description: Group of the Envoy hosts.
    type: str
    default: openenv_envoy
  worker_group:
    description: Group of the environment-server hosts.
    type: str
    default: openenv_worker
  cluster_group:
    description: Group of every host of the allocation; C(cluster) (gymfleet's members) with O(runtime=systemd),
      C(slurm_allocation) with O(runtime=slurm) when unset.
    type: str
"""

EXAMPLES = r"""
# inventories/job.slurm.yml, used inside `salloc --nodes=3 ...`:
plugin: gymfleet.cluster.slurm_allocation
workers: 2

# The same, from a workstation or login shell outside any allocation: `gymfleet deploy -i job.slurm.yml` asks
# for 3 nodes, `gymfleet stop -i job.slurm.yml` gives them back.
# plugin: gymfleet.cluster.slurm_allocation
# workers: 2
# allocate: {cpus_per_node: 48, time: "2:00:00", partition: hopper-cpu}

# One node, one server, no Envoy (serve_single.sh):
# plugin: gymfleet.cluster.slurm_allocation
# envoy_nodes: 0

# A fixed node list, and every host's address from DNS:
# plugin: gymfleet.cluster.slurm_allocation
# nodelist: "hopper-cpu-[101-103]"
# compose:
#   ansible_host: inventory_hostname
"""

import shutil
import socket
import subprocess
import sys

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible_collections.gymfleet.cluster.plugins.module_utils.hostlist import HostlistError, expand_hostlist


def scontrol_hostnames(nodelist: str) -> list[str]:
    proc = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                          timeout=30, check=False)
    if proc.returncode != 0:
        raise AnsibleParserError(f"scontrol show hostnames {nodelist!r} failed: {proc.stderr.strip()}; "
                                 "fix: correct the node list (nodelist or SLURM_JOB_NODELIST)")
    return list(dict.fromkeys(proc.stdout.split()))


def split_allocation(hosts: list[str], envoy_nodes: int, workers: int | None) -> tuple[list[str], list[str]]:
    """The Envoy hosts and the worker hosts, or an error that says what to allocate."""
    if envoy_nodes < 0:
        raise AnsibleParserError(f"envoy_nodes is {envoy_nodes}; fix: set it to 0 (no Envoy) or more")
    if workers is not None and len(hosts) != workers + envoy_nodes:
        raise AnsibleParserError(
            f"the allocation has {len(hosts)} nodes ({', '.join(hosts)}) but {workers} workers and {envoy_nodes} "
            f"Envoy node(s) need {workers + envoy_nodes}; fix: for N workers allocate N+{envoy_nodes} nodes "
            f"(salloc --nodes={workers + envoy_nodes}) or set workers to {len(hosts) - envoy_nodes}")
    if len(hosts) <= envoy_nodes:
        raise AnsibleParserError(
            f"the allocation has {len(hosts)} node(s) ({', '.join(hosts)}), none left for environment servers after "
            f"{envoy_nodes} Envoy node(s); fix: allocate at least {envoy_nodes + 1} nodes")
    return hosts[:envoy_nodes], hosts[envoy_nodes:]


def outside_allocation(path: str, hosts: list[str], allocation: str | None) -> None:
    """Refuses nodes that the allocation gymfleet runs in does not hold."""
    if not allocation:
        return
    try:
        held = set(expand_hostlist(allocation))
    except HostlistError:
        return  # the allocation's own list is SLURM's to get right; srun names the node if it is not held
    foreign = [h for h in hosts if h not in held]
    if foreign:
        raise AnsibleParserError(f"{path}: node(s) {', '.join(foreign)} are not in this allocation ({allocation}); "
                                 "fix: remove nodelist from the file (the allocation's own list is used) or allocate "
                                 "those nodes")


def slurm_host_vars(path: str, node: str, group: str) -> dict:
    """How gymfleet reaches a node of an allocation as its user: from here, with job steps. Preflight asks for a
    member of the allocation's group rather than of `cluster`, which these hosts are not in."""
    try:
        address = socket.gethostbyname(node)
    except OSError as exc:
        raise AnsibleParserError(f"{path}: node {node}: its name does not resolve here ({exc}); fix: run gymfleet "
                                 "on the login node or a node of the allocation, where SLURM's node names resolve"
                                 ) from None
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "cluster_address": address, "openenv_runtime": "slurm", "envoy_runtime": "slurm",
            "preflight_group_rules": [{"group": group, "min": 1}]}


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "gymfleet.cluster.slurm_allocation"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith((".slurm.yml", ".slurm.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        nodelist = self.get_option("nodelist")
        if not nodelist:
            raise AnsibleParserError(f"{path}: no node list; fix: run inside a SLURM allocation (SLURM_JOB_NODELIST) "
                                     "or set nodelist")
        try:
            if self.get_option("use_scontrol") and shutil.which("scontrol"):
                hosts = scontrol_hostnames(nodelist)
            else:
                hosts = expand_hostlist(nodelist)
        except HostlistError as exc:
            raise AnsibleParserError(
                f"{path}: node list {exc}; fix: write it as SLURM does, such as node[01-03,07]") from exc
        envoy, _ = split_allocation(hosts, self.get_option("envoy_nodes"), self.get_option("workers"))
        runtime = self.get_option("runtime")
        if runtime == "slurm":
            outside_allocation(path, hosts, self.get_option("allocation_nodelist"))
        cluster = self.get_option("cluster_group") or ("slurm_allocation" if runtime == "slurm" else "cluster")
        envoy_group, worker_group = self.get_option("envoy_group"), self.get_option("worker_group")
        for group in (cluster, envoy_group, worker_group):
            self.inventory.add_group(group)
        strict = self.get_option("strict")
        for host in hosts:
            self.inventory.add_host(host, group=cluster)
            self.inventory.add_child(envoy_group if host in envoy else worker_group, host)
            if runtime == "slurm":
                for key, value in slurm_host_vars(path, host, cluster).items():
                    self.inventory.set_variable(host, key, value)
            variables = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
