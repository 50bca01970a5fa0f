#!/usr/bin/python
"""Report whether a Redis server answers, with the facts that matter for a cluster's registry."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_health
short_description: Check that a Redis server answers and report its role, version and key counts
version_added: 0.1.0
author: gymfleet developers
description:
  - Connects with a built-in RESP client (no redis-py needed on the host), sends C(PING) and C(INFO), and
    returns what a status table needs.
  - Never changes anything. With O(fail_when_down=false) an unreachable server is reported, not failed,
    so a status play can show every host.
extends_documentation_fragment:
  - gymfleet.cluster.attributes.read_only
  - gymfleet.cluster.redis_connection
options:
  fail_when_down:
    description: Fail when the server does not answer.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Check the registry Redis
  gymfleet.cluster.redis_health:
    host: "{{ cluster_address }}"
    port: 6379
    password: "{{ redis_password }}"
  register: registry

- name: Report a down server without failing
  gymfleet.cluster.redis_health:
    port: 6380
    fail_when_down: false
"""

RETURN = r"""
up:
  description: Whether the server answered PING.
  returned: always
  type: bool
error:
  description: Why the server could not be used, when O(fail_when_down=false).
  returned: when not up
  type: str
version:
  description: redis_version from INFO.
  returned: when up
  type: str
  sample: 7.0.15
role:
  description: Replication role.
  returned: when up
  type: str
  sample: master
uptime_seconds:
  description: Seconds since the server started.
  returned: when up
  type: int
connected_clients:
  description: Clients connected now.
  returned: when up
  type: int
keys:
  description: Number of keys per database index that holds any.
  returned: when up
  type: dict
  sample: {"0": 2, "1": 5}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.redis_args import (
    CONNECTION_REQUIRED_BY,
    connection_argument_spec,
    health,
)


def main():
    module = AnsibleModule(
        argument_spec={**connection_argument_spec(), "fail_when_down": {"type": "bool", "default": True}},
        required_by=CONNECTION_REQUIRED_BY,
        supports_check_mode=True,
    )
    result = health(module.params)
    if not result["up"] and module.params["fail_when_down"]:
        module.fail_json(msg=result["error"], **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
