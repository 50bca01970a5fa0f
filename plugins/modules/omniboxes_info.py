#!/usr/bin/python
"""Read an OmniBoxes master's or node's /info, and optionally wait for health and capacity."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: omniboxes_info
short_description: Read an OmniBoxes master's or node's /info, optionally waiting for health and capacity
version_added: 0.1.0
author: gymfleet developers
description:
  - Sends C(GET <url>/info) with the C(x-api-key) header.
  - A master answers with a list C(nodes) whose items have C(url), C(hash), C(healthy), C(capacity),
    C(available) and C(instances). From it this returns the nodes, how many are healthy, and the total and
    free capacity of the healthy ones.
  - A node answers with C(available), C(capacity) and C(in_use), which this returns.
  - With O(wait_healthy_nodes) and/or O(wait_capacity), it asks again every O(interval) seconds until both hold,
    and fails after O(timeout) seconds with the last answer. The master re-checks each node's health only every
    10 s, so allow for that.
  - It only reads; it changes nothing.
extends_documentation_fragment:
  - gymfleet.cluster.attributes.read_only
  - gymfleet.cluster.polling
options:
  url:
    description: Base URL of the master (port 7000) or the node server (port 8080).
    type: str
    required: true
  api_key:
    description: The API key (upstream's default is C(default_key)).
    type: str
    default: default_key
  wait_healthy_nodes:
    description: From a master, wait until at least this many nodes are healthy.
    type: int
  wait_capacity:
    description: Wait until the capacity (of healthy nodes, on a master) is at least this.
    type: int
"""

EXAMPLES = r"""
- name: Wait until all three nodes are healthy with their full capacity
  gymfleet.cluster.omniboxes_info:
    url: "http://{{ cluster_address }}:7000"
    wait_healthy_nodes: 3
    wait_capacity: 336
    timeout: 180
  register: master

- name: Ask one node server about its pool
  gymfleet.cluster.omniboxes_info:
    url: http://127.0.0.1:8080
"""

RETURN = r"""
kind:
  description: C(master) or C(node), from the shape of the answer.
  returned: always
  type: str
nodes:
  description: The master's nodes as it reported them.
  returned: when kind is master
  type: list
  elements: dict
healthy:
  description: How many of the master's nodes are healthy.
  returned: when kind is master
  type: int
total:
  description: How many nodes the master knows.
  returned: when kind is master
  type: int
unhealthy_urls:
  description: URLs of the master's nodes that are not healthy.
  returned: when kind is master
  type: list
  elements: str
capacity:
  description: Instances in total (healthy nodes only, on a master).
  returned: always
  type: int
available:
  description: Free instances (healthy nodes only, on a master).
  returned: always
  type: int
in_use:
  description: The node's leases.
  returned: when kind is node
  type: list
  elements: str
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.omniboxes import fetch_info, summarize_info
from ansible_collections.gymfleet.cluster.plugins.module_utils.polling import POLLING_ARGUMENT_SPEC


def unmet(summary: dict, healthy_nodes: int | None, capacity: int | None) -> list[str]:
    """What the summary still lacks, as sentences; empty when the wait is over."""
    problems = []
    if healthy_nodes is not None and summary.get("healthy", 0) < healthy_nodes:
        unhealthy = summary.get("unhealthy_urls")
        problems.append(f"{summary.get('healthy', 0)} of {healthy_nodes} nodes healthy"
                        + (f" (unhealthy: {', '.join(unhealthy)})" if unhealthy else ""))
    if capacity is not None and summary["capacity"] < capacity:
        problems.append(f"capacity {summary['capacity']} of {capacity}")
    return problems


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "api_key": {"type": "str", "default": "default_key", "no_log": True},
            "wait_healthy_nodes": {"type": "int"},
            "wait_capacity": {"type": "int"},
            **POLLING_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    params = module.params
    start = time.monotonic()
    while True:
        try:
            answer = fetch_info(params["url"], params["api_key"], params["request_timeout"])
            summary, error = summarize_info(answer), None
            problems = unmet(summary, params["wait_healthy_nodes"], params["wait_capacity"])
        except Exception as exc:  # connection refused, HTTP errors, bad JSON: all mean "not ready yet"
            summary, error = None, f"{params['url']}/info: {exc}"
            problems = [error]
        waited = round(time.monotonic() - start, 1)
        if summary is not None and not problems:
            module.exit_json(changed=False, waited=waited, **summary)
        if waited >= params["timeout"] or (
            params["wait_healthy_nodes"] is None and params["wait_capacity"] is None
        ):
            module.fail_json(msg=f"{params['url']}: {'; '.join(problems)} after {waited} s", waited=waited,
                             **(summary or {}))
        time.sleep(params["interval"])


if __name__ == "__main__":
    main()
