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
    description: How many hosts, from the front of the list, run Envoy.
    type: int
    default: 1
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
    description: Group of every host of the allocation (gymfleet's members).
    type: str
    default: cluster
"""

EXAMPLES = r"""
# inventories/job.slurm.yml, used inside `salloc --nodes=3 ...`:
plugin: gymfleet.cluster.slurm_allocation
workers: 2

# A fixed node list, and every host's address from DNS:
# plugin: gymfleet.cluster.slurm_allocation
# nodelist: "hopper-cpu-[101-103]"
# compose:
#   ansible_host: inventory_hostname
"""

import shutil
import subprocess

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
    if envoy_nodes < 1:
        raise AnsibleParserError(f"envoy_nodes is {envoy_nodes}; fix: set it to 1 or more")
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
        cluster, envoy_group, worker_group = (self.get_option(name) for name in
                                              ("cluster_group", "envoy_group", "worker_group"))
        for group in (cluster, envoy_group, worker_group):
            self.inventory.add_group(group)
        strict = self.get_option("strict")
        for host in hosts:
            self.inventory.add_host(host, group=cluster)
            self.inventory.add_child(envoy_group if host in envoy else worker_group, host)
            variables = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
