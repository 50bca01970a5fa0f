#!/usr/bin/python
"""Documentation of the cluster_address_facts action plugin (plugins/action/cluster_address_facts.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_address_facts
short_description: Decide a host's cluster address, with the facts it is decided from, in one task
version_added: 0.3.0
author: gymfleet developers
description:
  - Runs M(gymfleet.cluster.host_facts) on the host (its names, release, interfaces and IPv4 addresses), asking
    for the route towards O(route_to) only when the address is neither O(ip) nor O(tailnet); then decides on the
    controller, in this order, O(ip), O(tailnet), the local address of that route.
  - Fails with one line naming the host, the setting and the fix when the route cannot be found or when the
    decided address is on no interface of the host; nothing is set then.
  - Sets the facts C(cluster_address) and C(cluster_address_source) with host_facts' own, so the fact cache keeps
    them for the next run (a later run with C(--limit), or status, knows every member's address).
  - The role M(gymfleet.cluster.cluster_address,role) is its one caller.
options:
  ip:
    description: An address the user gave (C(cluster_address_ip)); decides when not empty.
    type: str
    default: ""
  tailnet:
    description: The host's tailnet address, when it is on the tailnet; decides when O(ip) is empty.
    type: str
    default: ""
  route_to:
    description: The control host as this host must reach it (a name or an IPv4 address).
    type: str
    default: ""
  route_label:
    description: The control host's inventory name, for C(cluster_address_source) (C(route to <name>)).
    type: str
    default: ""
  route_variable:
    description: The setting a route error points at, such as C(cluster_address_control_host).
    type: str
    default: ""
  paths:
    description: Paths whose kind host_facts reports as RV(path_kinds), in the same round trip.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    details: It changes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Decide the cluster address by the route towards node1
  gymfleet.cluster.cluster_address_facts:
    route_to: 10.0.0.11
    route_label: node1
    route_variable: cluster_address_control_host
"""

RETURN = r"""
path_kinds:
  description: With O(paths) only - each path and what is there (directory, file, missing or other).
  returned: when O(paths) is not empty
  type: dict
  sample: {/opt/gymfleet/envoy/venv: directory}
cluster_address:
  description: The decided address (also set as a fact).
  returned: success
  type: str
  sample: 10.0.0.12
cluster_address_source:
  description: Where it came from, C(cluster_address_ip), C(tailscale) or C(route to <control host>).
  returned: success
  type: str
  sample: route to node1
ansible_facts:
  description: M(gymfleet.cluster.host_facts)' facts with C(cluster_address) and C(cluster_address_source).
  returned: always
  type: dict
"""
