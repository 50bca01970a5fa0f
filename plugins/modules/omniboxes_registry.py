#!/usr/bin/python
"""List, unregister or flush the nodes in the OmniBoxes Redis registry."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: omniboxes_registry
short_description: List, unregister or flush the nodes in the OmniBoxes Redis registry
version_added: 0.1.0
author: gymfleet developers
description:
  - The OmniBoxes master discovers nodes from keys C(omnibox:nodes:<hostname>) (value C(http://<ip>:<port>),
    120 s TTL) in DB 1 of its Redis.
  - O(state=present) lists them with their remaining TTL, using C(SCAN) (never C(KEYS), which blocks the server).
  - O(state=absent) unregisters O(hostname), so the master drops it at its next registry read instead of
    after the TTL.
  - O(state=flushed) removes every C(omnibox:nodes:*) key and nothing else, where the runbook's C(FLUSHDB) would
    also delete any other data kept in that database.
extends_documentation_fragment:
  - gymfleet.cluster.redis_connection
options:
  state:
    description: What to do.
    type: str
    choices: [present, absent, flushed]
    default: present
  hostname:
    description: The node to unregister; required with O(state=absent).
    type: str
  db:
    description: The registry database.
    type: int
    default: 1
attributes:
  check_mode:
    support: full
    description: O(state=absent) and O(state=flushed) report what they would remove and remove nothing.
  diff_mode:
    support: full
    description: The registered hostnames before and after.
"""

EXAMPLES = r"""
- name: List the registered nodes
  gymfleet.cluster.omniboxes_registry:
    host: "{{ hostvars[groups['omniboxes_master'][0]].cluster_address }}"
  register: registry

- name: Unregister a node that is being stopped
  gymfleet.cluster.omniboxes_registry:
    host: 127.0.0.1
    state: absent
    hostname: worker-3

- name: Show what a full restart would flush
  gymfleet.cluster.omniboxes_registry:
    state: flushed
  check_mode: true
"""

RETURN = r"""
nodes:
  description: The registered nodes after the run, sorted by hostname; C(ttl) is seconds left (-1 means no expiry).
  returned: always
  type: list
  elements: dict
  sample: [{"hostname": "worker-1", "url": "http://10.0.0.11:8080", "ttl": 97}]
removed:
  description: Hostnames removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.omniboxes import (
    REGISTRY_DB,
    REGISTRY_PREFIX,
    registry_nodes,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.redis_args import (
    CONNECTION_REQUIRED_BY,
    connect,
    connection_argument_spec,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespError


def run(module: AnsibleModule) -> dict:
    params = module.params
    with connect(params, db=params["db"]) as client:
        before = registry_nodes(client)
        names = [node["hostname"] for node in before]
        if params["state"] == "absent":
            removed = [params["hostname"]] if params["hostname"] in names else []
        elif params["state"] == "flushed":
            removed = names
        else:
            removed = []
        if removed and not module.check_mode:
            client.command("DEL", *[f"{REGISTRY_PREFIX}{name}" for name in removed])
        after = [node for node in before if node["hostname"] not in removed]
    result = {"changed": bool(removed), "nodes": after, "removed": removed}
    if removed:
        result["diff"] = {
            "before": "\n".join(names) + "\n",
            "after": "".join(f"{node['hostname']}\n" for node in after),
        }
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            **connection_argument_spec(),
            "state": {"type": "str", "choices": ["present", "absent", "flushed"], "default": "present"},
            "hostname": {"type": "str"},
            "db": {"type": "int", "default": REGISTRY_DB},
        },
        required_if=[("state", "absent", ["hostname"])],
        required_by=CONNECTION_REQUIRED_BY,
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except RespError as exc:
        params = module.params
        module.fail_json(msg=f"registry at {params['host']}:{params['port']} db {params['db']}: {exc}")


if __name__ == "__main__":
    main()
