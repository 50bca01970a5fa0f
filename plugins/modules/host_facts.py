#!/usr/bin/python
"""The few facts gymfleet's roles read about a host, in one quick call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_facts
short_description: The host facts gymfleet's roles read, gathered in one quick call
version_added: 0.3.0
author: gymfleet developers
description:
  - Sets the facts the roles read, under the names and in the shapes of M(ansible.builtin.setup)'s C(platform),
    C(distribution) and C(network) subsets, so a task written against those reads them unchanged. The host's
    name (C(hostname), C(nodename)), its distribution's release, its interfaces and their IPv4 addresses.
  - The addresses come from one C(ip -json address show) (iproute2), the release from C(/etc/os-release); none of
    setup's other collectors run (those subsets take about a second on a busy two-core machine, this call a
    fraction of it).
  - Each interface is a fact of its own under its name with C(-) as C(_), as setup names them.
extends_documentation_fragment: gymfleet.cluster.attributes.read_only
options:
  route_to:
    description:
      - A host name or IPv4 address to ask the kernel about - resolved like C(getent ahostsv4) (the first
        address), then C(ip route get) - so RV(ansible_facts.route_source) says which local address packets to
        it leave from. Empty for none.
    type: str
    default: ""
  paths:
    description:
      - Paths on the host whose kind RV(path_kinds) reports, in the same round trip (preflight checks that no
        Python environment's path is a file).
    type: list
    elements: path
    default: []
requirements:
  - iproute2 with JSON output (Debian 10 and later, Ubuntu 18.04 and later)
"""

EXAMPLES = r"""
- name: Learn the host's names and addresses
  gymfleet.cluster.host_facts:

- name: Learn which local address the host uses towards node1
  gymfleet.cluster.host_facts:
    route_to: node1

- name: Show its IPv4 addresses
  ansible.builtin.debug:
    msg: "{{ ansible_facts.all_ipv4_addresses }}"
"""

RETURN = r"""
path_kinds:
  description: With O(paths) only - each path and what is there.
  returned: when O(paths) is not empty
  type: dict
  sample: {/opt/gymfleet/ray/venv-2.60.0: directory, /opt/gymfleet/envoy/venv: missing}
ansible_facts:
  description: The facts, as setup would name them.
  returned: always
  type: dict
  contains:
    hostname:
      description: The host's name up to its first dot.
      type: str
      sample: node1
    nodename:
      description: The host's name as the kernel has it.
      type: str
      sample: node1.example.org
    distribution_release:
      description: The release's code name (C(VERSION_CODENAME)), empty when the host names none.
      type: str
      sample: bookworm
    interfaces:
      description: Every interface's name.
      type: list
      elements: str
      sample: [lo, eth0]
    all_ipv4_addresses:
      description: Every IPv4 address of every interface, loopback's left out.
      type: list
      elements: str
      sample: [192.0.2.11]
    route_source:
      description: With O(route_to) only (not one of setup's) - the local address the kernel uses towards it.
      type: dict
      contains:
        target: {description: O(route_to) as given., type: str}
        address: {description: The address it resolved to, empty when it did not resolve., type: str}
        source: {description: The local source address of the route to it, empty when there is none., type: str}
        error:
          description: C(cannot resolve) or C(no route to) with the reason, empty when the source is known.
          type: str
      sample: {target: node1, address: 192.0.2.11, source: 192.0.2.12, error: ""}
    nvidia_gpus:
      description: How many GPUs C(nvidia-smi --list-gpus) lists; 0 on a host without nvidia-smi (not one of setup's).
      type: int
      sample: 0
  sample:
    hostname: node1
    interfaces: [lo, eth0]
    all_ipv4_addresses: [192.0.2.11]
    eth0:
      device: eth0
      active: true
      mtu: 1500
      macaddress: "02:42:ac:1e:00:0b"
      ipv4: {address: 192.0.2.11, netmask: 255.255.255.0, network: 192.0.2.0, prefix: "24", broadcast: 192.0.2.255}
      ipv4_secondaries: []
"""

import ipaddress
import json
import os
import platform
import re
import socket

from ansible.module_utils.basic import AnsibleModule


def os_release_codename(text: str) -> str:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values.get("VERSION_CODENAME") or values.get("UBUNTU_CODENAME") or ""


def _ipv4(entry: dict) -> dict:
    network = ipaddress.ip_interface(f"{entry['local']}/{entry['prefixlen']}").network
    return {"address": entry["local"], "broadcast": entry.get("broadcast", ""), "netmask": str(network.netmask),
            "network": str(network.network_address), "prefix": str(entry["prefixlen"])}


def interface_facts(links: list[dict]) -> dict:
    """setup's network facts of `ip -json address show`'s answer: interfaces, all_ipv4_addresses and one fact
    per interface."""
    facts = {"interfaces": [], "all_ipv4_addresses": []}
    for link in links:
        name = link["ifname"]
        addresses = [_ipv4(a) for a in link.get("addr_info", []) if a.get("family") == "inet"]
        interface = {"device": name, "active": "UP" in link.get("flags", []) or link.get("operstate") == "UP",
                     "mtu": link.get("mtu"), "ipv4_secondaries": addresses[1:]}
        if link.get("address"):
            interface["macaddress"] = link["address"]
        if addresses:
            interface["ipv4"] = addresses[0]
        facts["interfaces"].append(name)
        facts[name.replace("-", "_")] = interface
        facts["all_ipv4_addresses"] += [a["address"] for a in addresses if not a["address"].startswith("127.")]
    return facts


def path_kind(path: str) -> str:
    """directory, file, missing or other (a socket, a device...), following symbolic links as a venv's user would."""
    if os.path.isdir(path):
        return "directory"
    if os.path.isfile(path):
        return "file"
    return "missing" if not os.path.lexists(path) else "other"


def gpu_count(listing: str) -> int:
    """The GPUs in `nvidia-smi --list-gpus`' answer, one `GPU <n>: ...` line each."""
    return sum(1 for line in listing.splitlines() if re.match(r"GPU \d+:", line))


def route_source(target: str, ip: str, run) -> dict:
    """The local address packets to target leave from, or why it is not known."""
    answer = {"target": target, "address": "", "source": "", "error": ""}
    try:
        answer["address"] = socket.getaddrinfo(target, None, socket.AF_INET)[0][4][0]
    except (OSError, UnicodeError) as exc:
        return {**answer, "error": f"cannot resolve {target}: {exc}"}
    rc, out, err = run([ip, "-json", "route", "get", answer["address"]])
    try:
        routes = json.loads(out) if rc == 0 else []
    except ValueError:
        routes = []
    source = (routes[0].get("prefsrc") or "") if routes else ""
    if not source:
        return {**answer, "error": f"no route to {target} ({answer['address']}): {(err or out).strip() or 'no source'}"}
    return {**answer, "source": source}


def main():
    module = AnsibleModule(argument_spec={"route_to": {"type": "str", "default": ""},
                                          "paths": {"type": "list", "elements": "path", "default": []}},
                           supports_check_mode=True)
    ip = module.get_bin_path("ip", required=True)
    rc, out, err = module.run_command([ip, "-json", "address", "show"])
    try:
        links = json.loads(out) if rc == 0 else None
    except ValueError:
        links = None
    if links is None:
        module.fail_json(msg=f"`ip -json address show` gave no JSON ({(err or out).strip()[:200]}); fix: install an "
                             "iproute2 with JSON output (Debian 10 or later)")
    try:
        with open("/etc/os-release") as handle:
            release = os_release_codename(handle.read())
    except OSError:
        release = ""
    nvidia_smi = module.get_bin_path("nvidia-smi")
    gpus = module.run_command([nvidia_smi, "--list-gpus"]) if nvidia_smi else (1, "", "")
    node = platform.node()
    facts = {"hostname": node.split(".")[0], "nodename": node, "distribution_release": release,
             "nvidia_gpus": gpu_count(gpus[1]) if gpus[0] == 0 else 0, **interface_facts(links)}
    if module.params["route_to"]:
        facts["route_source"] = route_source(module.params["route_to"], ip, module.run_command)
    kinds = {"path_kinds": {path: path_kind(path) for path in module.params["paths"]}} if module.params["paths"] else {}
    module.exit_json(changed=False, ansible_facts=facts, **kinds)


if __name__ == "__main__":
    main()
