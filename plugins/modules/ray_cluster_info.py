#!/usr/bin/python
"""Read a Ray cluster's nodes and resources from its dashboard, and optionally wait until N nodes are alive."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ray_cluster_info
short_description: Read a Ray cluster's nodes and resources from its dashboard, optionally waiting for N alive nodes
version_added: 0.1.0
author: gymfleet developers
description:
  - Asks the head's dashboard (Ray 2.52 or later) C(GET /api/version), C(GET /api/v0/nodes?detail=1) (the state
    API) and C(GET /api/cluster_status?format=0) (the autoscaler's resource usage).
  - With token authentication on, sends the token as a bearer token in the C(Authorization) header, read from
    O(auth_token_path) or given as O(auth_token).
  - Returns every node with its address and resources, how many are alive, the head's address, the cluster's
    totals and what is in use.
  - With O(wait_for_nodes), asks again every O(interval) seconds until at least that many nodes are alive, and
    fails after O(timeout) seconds with the last answer. A worker whose first C(ray start) timed out is started
    again by systemd, so a wait rides that out.
  - A refused token fails at once, without waiting, because asking again cannot help.
  - It only reads; it changes nothing.
extends_documentation_fragment:
  - gymfleet.cluster.attributes.read_only
  - gymfleet.cluster.polling
options:
  dashboard_url:
    description: Base URL of the head's dashboard.
    type: str
    default: http://127.0.0.1:8265
  auth_token_path:
    description: File on the host that holds the cluster's token (C(RAY_AUTH_TOKEN_PATH)).
    type: path
  auth_token:
    description: The token itself, instead of O(auth_token_path).
    type: str
  wait_for_nodes:
    description: Wait until at least this many nodes are alive; 0 does not wait.
    type: int
    default: 0
notes:
  - The dashboard must run (C(ray start --include-dashboard true), Ray's default on a head).
"""

EXAMPLES = r"""
- name: Wait until the head and four workers are alive
  gymfleet.cluster.ray_cluster_info:
    dashboard_url: "http://{{ cluster_address }}:8265"
    auth_token_path: /etc/gymfleet/ray/auth_token
    wait_for_nodes: 5
    timeout: 300
  register: ray_cluster

- name: Show the cluster's GPUs
  ansible.builtin.debug:
    msg: >-
      {{ ray_cluster.alive }} nodes, {{ ray_cluster.totals.GPU | default(0) }} GPUs,
      head {{ ray_cluster.head_address }}
"""

RETURN = r"""
ray_version:
  description: The Ray version the dashboard reports.
  returned: success
  type: str
  sample: 2.60.0
dashboard_url:
  description: O(dashboard_url) without a trailing slash.
  returned: always
  type: str
head_address:
  description: The head node's address.
  returned: success
  type: str
  sample: 10.0.0.1
alive:
  description: How many nodes are alive.
  returned: success
  type: int
dead:
  description: How many nodes the cluster still remembers as dead.
  returned: success
  type: int
nodes:
  description: Every node, alive ones first, then by address.
  returned: success
  type: list
  elements: dict
  contains:
    node_id:
      description: Ray's node id.
      type: str
    address:
      description: The node's IP address (its C(--node-ip-address)).
      type: str
    name:
      description: The node's name.
      type: str
    alive:
      description: Whether the node is alive.
      type: bool
    state:
      description: C(ALIVE) or C(DEAD).
      type: str
    head:
      description: Whether it is the head.
      type: bool
    resources:
      description: Its total resources (C(CPU), C(GPU), C(memory), C(object_store_memory), custom ones).
      type: dict
totals:
  description: Resources of the alive nodes, added up (C(CPU), C(GPU), C(memory) and C(object_store_memory) in bytes,
    custom resources).
  returned: success
  type: dict
  sample: {CPU: 5.0, GPU: 8.0, memory: 54000000000.0}
used:
  description: Resources in use, from the autoscaler's report; empty when the dashboard has none yet.
  returned: success
  type: dict
available:
  description: C(totals) less C(used).
  returned: success
  type: dict
waited:
  description: Seconds spent waiting.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.polling import POLLING_ARGUMENT_SPEC
from ansible_collections.gymfleet.cluster.plugins.module_utils.ray_dashboard import TokenRefused, fetch


def read_token(module: AnsibleModule) -> str | None:
    params = module.params
    if params["auth_token"]:
        return params["auth_token"]
    if not params["auth_token_path"]:
        return None
    try:
        with open(params["auth_token_path"], encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        module.fail_json(msg=f"auth_token_path {params['auth_token_path']}: {exc.strerror}; fix: point it at the "
                             "cluster's token file (ray_auth_token_path)", waited=0.0,
                         dashboard_url=params["dashboard_url"].rstrip("/"))
    if not token:
        module.fail_json(msg=f"auth_token_path {params['auth_token_path']} is empty; fix: write the cluster's token "
                             "there", waited=0.0, dashboard_url=params["dashboard_url"].rstrip("/"))
    return token


def main():
    module = AnsibleModule(
        argument_spec={
            "dashboard_url": {"type": "str", "default": "http://127.0.0.1:8265"},
            "auth_token_path": {"type": "path"},
            "auth_token": {"type": "str", "no_log": True},
            "wait_for_nodes": {"type": "int", "default": 0},
            **POLLING_ARGUMENT_SPEC,
        },
        mutually_exclusive=[["auth_token", "auth_token_path"]],
        supports_check_mode=True,
    )
    params = module.params
    url = params["dashboard_url"].rstrip("/")
    token = read_token(module)
    start = time.monotonic()
    while True:
        summary = None
        try:
            summary = fetch(params, token)
            problem = None if summary["alive"] >= params["wait_for_nodes"] else (
                f"{summary['alive']} of {params['wait_for_nodes']} nodes alive ("
                + (", ".join(n["address"] for n in summary["nodes"] if n["alive"]) or "none") + ")")
        except TokenRefused as exc:
            module.fail_json(msg=f"{exc}; fix: give the cluster's token (auth_token_path)", waited=0.0,
                             dashboard_url=url)
        except Exception as exc:  # refused connection, a dashboard still starting, bad JSON: not ready yet
            problem = f"{url}: {exc}"
        waited = round(time.monotonic() - start, 1)
        if problem is None:
            module.exit_json(changed=False, waited=waited, dashboard_url=url, **summary)
        if waited >= params["timeout"] or params["wait_for_nodes"] == 0:
            module.fail_json(msg=f"{url}: {problem} after {waited} s", waited=waited, dashboard_url=url,
                             **(summary or {}))
        time.sleep(params["interval"])


if __name__ == "__main__":
    main()
