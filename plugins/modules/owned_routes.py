#!/usr/bin/python
"""Keep exactly a set of static routes that gymfleet owns, marked by their routing protocol number."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: owned_routes
short_description: Keep exactly the static routes that gymfleet owns, and no others
version_added: 0.1.0
author: gymfleet developers
description:
  - Makes the routes of protocol O(protocol) in O(table) be exactly O(routes) - adding the missing ones, changing
    those whose gateway changed and deleting those that left the list.
  - Ownership is the route's protocol number (C(ip route ... proto 148), named C(gymfleet) by the role), so
    routes added by anyone else (the kernel, DHCP, Docker, Tailscale, an administrator's C(proto static)) are
    never changed or deleted. 148 is free in iproute2's table (188, often suggested, is C(ospf)).
  - Fails before any change when a wanted destination is already routed by someone else, naming that route.
  - Changes the running kernel only; the P(gymfleet.cluster.static_routes#role) role adds a boot unit for
    persistence.
options:
  routes:
    description: The routes to keep.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The destination network, such as C(172.17.29.0/24).
        type: str
        required: true
      via:
        description: The gateway, such as the other host's cluster address.
        type: str
        required: true
  protocol:
    description: The routing protocol number that marks gymfleet's routes (see C(/etc/iproute2/rt_protos)).
    type: int
    default: 148
  table:
    description: The routing table.
    type: str
    default: main
  state:
    description: C(present) keeps exactly O(routes); C(absent) deletes every route of O(protocol) in O(table).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Reports the same changes and diff without touching the routing table.
  diff_mode:
    support: full
    description: The owned routes before and after, one C(dest via gateway) per line.
requirements:
  - iproute2 with JSON output (C(ip -j))
"""

EXAMPLES = r"""
---
- name: Route to the other hosts' container subnets
  gymfleet.cluster.owned_routes:
    routes:
      - dest: 172.17.29.0/24
        via: 10.1.1.29
      - dest: 172.17.33.0/24
        via: 10.1.1.33

- name: Remove every route gymfleet added
  gymfleet.cluster.owned_routes:
    state: absent
"""

RETURN = r"""
routes:
  description: The owned routes after the run (in check mode, as they would be).
  returned: always
  type: list
  elements: dict
  sample: [{dest: 172.17.29.0/24, via: 10.1.1.29}]
added:
  description: Routes added or whose gateway changed.
  returned: always
  type: list
  elements: dict
removed:
  description: Owned routes deleted because they left the list.
  returned: always
  type: list
  elements: dict
"""

import ipaddress
import json

from ansible.module_utils.basic import AnsibleModule


def _network(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


class Routes:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.ip = module.get_bin_path("ip", required=True)
        self.table = module.params["table"]

    def show(self, *selector: str) -> list[dict]:
        rc, out, err = self.module.run_command([self.ip, "-4", "-j", "route", "show", "table", self.table, *selector])
        if rc != 0:
            self.module.fail_json(msg=f"ip route show {' '.join(selector)} failed: {err.strip()}")
        return json.loads(out or "[]")

    def run(self, *args: str) -> None:
        rc, _, err = self.module.run_command([self.ip, "-4", "route", *args, "table", self.table])
        if rc != 0:
            self.module.fail_json(msg=f"ip route {' '.join(args)} failed: {err.strip()}")


def _as_route(entry: dict) -> dict:
    dest = entry["dst"] if entry["dst"] != "default" else "0.0.0.0/0"
    return {"dest": _network(dest), "via": entry.get("gateway", "")}


def _lines(routes: list[dict]) -> str:
    return "".join(f"{r['dest']} via {r['via']}\n" for r in sorted(routes, key=lambda r: r["dest"]))


def main():
    module = AnsibleModule(
        argument_spec={
            "routes": {"type": "list", "elements": "dict", "default": [],
                       "options": {"dest": {"type": "str", "required": True},
                                   "via": {"type": "str", "required": True}}},
            "protocol": {"type": "int", "default": 148},
            "table": {"type": "str", "default": "main"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    protocol = str(module.params["protocol"])
    wanted = {}
    if module.params["state"] == "present":
        for route in module.params["routes"]:
            try:
                dest, via = _network(route["dest"]), str(ipaddress.ip_address(route["via"]))
            except ValueError as error:
                module.fail_json(msg=f"route {route['dest']} via {route['via']}: {error}; fix: give a network "
                                     "such as 172.17.29.0/24 and a gateway address")
            if dest in wanted and wanted[dest] != via:
                module.fail_json(msg=f"two gateways for {dest}: {wanted[dest]} and {via}; fix: keep one")
            wanted[dest] = via

    routes = Routes(module)
    owned = {r["dest"]: r["via"] for r in map(_as_route, routes.show("proto", protocol))}
    # Someone else's route to a destination we want: replacing it would take it from its owner.
    for dest in sorted(set(wanted) - set(owned)):
        for other in routes.show("exact", dest):
            module.fail_json(msg=f"{dest} is already routed by another owner ({other.get('protocol', 'boot')}"
                                 f" route via {other.get('gateway', other.get('dev', '?'))}); fix: remove that "
                                 "route or drop this destination from the inventory")
    added = [{"dest": d, "via": v} for d, v in sorted(wanted.items()) if owned.get(d) != v]
    removed = [{"dest": d, "via": v} for d, v in sorted(owned.items()) if d not in wanted]
    if not module.check_mode:
        for route in removed:
            routes.run("del", route["dest"], "proto", protocol)
        for route in added:
            routes.run("replace", route["dest"], "via", route["via"], "proto", protocol)
    after = [{"dest": d, "via": v} for d, v in sorted(wanted.items())]
    result = {"changed": bool(added or removed), "routes": after, "added": added, "removed": removed}
    if module._diff:
        result["diff"] = {"before": _lines([{"dest": d, "via": v} for d, v in owned.items()]),
                          "after": _lines(after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
