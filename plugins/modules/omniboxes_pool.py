#!/usr/bin/python
"""Inspect or reset a node's OmniBoxes instance pool (sets available and in_use in its Redis)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: omniboxes_pool
short_description: Inspect or reset an OmniBoxes node's instance pool in Redis
version_added: 0.1.0
author: gymfleet developers
description:
  - Each OmniBoxes node keeps its pool in DB 0 of its own Redis. The set C(available) holds the free instance
    ports, and the set C(in_use) holds the leases as C(<instance_id>:<port>).
  - O(state=present) reports the pool. With O(expected_ports), it also reports the ports that are missing from
    both sets, and the ports that are there but should not be. C(conflicts) lists any port that is both free
    and leased, which would be handed out twice.
  - O(state=reset) deletes exactly the keys C(available) and C(in_use), as the runbook's full restart does,
    so that the restarted instance servers register again. With O(expected_ports), it also fills
    C(available) with them. Other keys in the database are left alone.
extends_documentation_fragment:
  - gymfleet.cluster.redis_connection
options:
  state:
    description: What to do.
    type: str
    choices: [present, reset]
    default: present
  expected_ports:
    description: The instance ports this node runs (C(9000) .. C(9000+N-1) by default in OmniBoxes).
    type: list
    elements: int
  db:
    description: The pool database.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: O(state=reset) reports what it would delete and changes nothing.
  diff_mode:
    support: full
    description: The two sets before and after.
"""

EXAMPLES = r"""
- name: Check the pool matches the instances deployed
  gymfleet.cluster.omniboxes_pool:
    expected_ports: "{{ range(9000, 9000 + omniboxes_instances) | list }}"
  register: pool
  failed_when: pool.missing or pool.unexpected or pool.conflicts

- name: Empty the pool before the instance servers start again
  gymfleet.cluster.omniboxes_pool:
    state: reset
  register: pool

- name: Say what it held
  ansible.builtin.debug:
    msg: "flushed available={{ pool.before.available }} in_use={{ pool.before.in_use }}"
"""

RETURN = r"""
available:
  description: Free instance ports after the run, sorted.
  returned: always
  type: list
  elements: int
in_use:
  description: Leases after the run (C(<instance_id>:<port>)), sorted.
  returned: always
  type: list
  elements: str
capacity:
  description: Free plus leased instances.
  returned: always
  type: int
conflicts:
  description: Ports that are both free and leased.
  returned: always
  type: list
  elements: int
missing:
  description: Expected ports in neither set.
  returned: when O(expected_ports) is given
  type: list
  elements: int
unexpected:
  description: Ports in the pool that are not expected.
  returned: when O(expected_ports) is given
  type: list
  elements: int
before:
  description: The pool before the reset (what it deleted), so that one call both empties it and says what it held.
  returned: when O(state=reset)
  type: dict
  contains:
    available:
      description: Free instance ports before the reset, sorted.
      type: list
      elements: int
    in_use:
      description: Leases before the reset, sorted.
      type: list
      elements: str
  sample: {available: [9000, 9001], in_use: ["a1b2:9002"]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.omniboxes import (
    POOL_DB,
    POOL_KEYS,
    pool_state,
    summarize_pool,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.redis_args import (
    CONNECTION_REQUIRED_BY,
    connect,
    connection_argument_spec,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespError


def _describe(state: dict) -> str:
    return f"available: {state['available']}\nin_use: {state['in_use']}\n"


def run(module: AnsibleModule) -> dict:
    params = module.params
    expected = params["expected_ports"]
    with connect(params, db=params["db"]) as client:
        before = pool_state(client, expected)
        if params["state"] == "present":
            return {"changed": False, **before}
        target = summarize_pool(expected or [], [], expected)
        changed = (before["available"], before["in_use"]) != (target["available"], target["in_use"])
        if changed and not module.check_mode:
            client.command("DEL", *POOL_KEYS)
            if expected:
                client.command("SADD", "available", *expected)
        after = target if module.check_mode else pool_state(client, expected)
    result = {"changed": changed, **after, "before": {"available": before["available"], "in_use": before["in_use"]}}
    if changed:
        result["diff"] = {"before": _describe(before), "after": _describe(after)}
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            **connection_argument_spec(),
            "state": {"type": "str", "choices": ["present", "reset"], "default": "present"},
            "expected_ports": {"type": "list", "elements": "int"},
            "db": {"type": "int", "default": POOL_DB},
        },
        required_by=CONNECTION_REQUIRED_BY,
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except RespError as exc:
        module.fail_json(msg=f"pool at {module.params['host']}:{module.params['port']} db {module.params['db']}: {exc}")


if __name__ == "__main__":
    main()
