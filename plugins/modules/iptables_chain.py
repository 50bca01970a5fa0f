#!/usr/bin/python
"""Own one iptables chain: its exact rules and the jumps into it, without touching any other chain."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iptables_chain
short_description: Manage the rules of one iptables chain that gymfleet owns, and the jumps into it
version_added: 0.1.0
author: gymfleet developers
description:
  - Makes O(chain) in O(table) hold exactly O(rules), in order, and makes sure each of O(jumps) sends traffic
    into it from a parent chain such as C(INPUT) or C(POSTROUTING).
  - Applies everything in one C(iptables-restore --noflush) commit, which replaces only O(chain). Chains owned
    by others (Docker, Tailscale, the administrator) are never flushed or reordered; a jump is inserted only
    when the parent chain has none.
  - Rules are compared after undoing what C(iptables-save) rewrites (option order, implicit C(-m tcp),
    C(/32) on addresses), so a second run with the same input reports no change.
options:
  chain:
    description: The chain's name; gymfleet's chains start with C(GYMFLEET-).
    type: str
    required: true
  table:
    description: The table of the chain.
    type: str
    choices: [filter, nat, mangle, raw]
    default: filter
  rules:
    description: The chain's rules in iptables syntax without C(-A <chain>), in order.
    type: list
    elements: str
    default: []
  jumps:
    description: Where traffic enters the chain.
    type: list
    elements: dict
    default: []
    suboptions:
      chain:
        description: The parent chain, such as C(INPUT).
        type: str
        required: true
      position:
        description: Where a missing jump is inserted in the parent chain (1 is the top).
        type: int
        default: 1
      match:
        description: Matches placed before C(-j), such as C(-p tcp).
        type: str
        default: ""
  state:
    description: C(absent) removes the jumps into the chain, then the chain.
    type: str
    choices: [present, absent]
    default: present
  save_path:
    description:
      - Also keep the chain's rules in this file, as C(iptables-restore --noflush) input without the jumps, so a
        boot unit can restore exactly what this module applied. Written only when it differs, mode 0600.
      - With O(state=absent), the file is removed.
    type: path
  ip_version:
    description: Which family to manage.
    type: str
    choices: [ipv4, ipv6]
    default: ipv4
attributes:
  check_mode:
    support: full
    description: Computes the same change and diff, and returns the iptables-restore input it would apply.
  diff_mode:
    support: full
    description: The chain's rules and jumps before and after.
requirements:
  - iptables (legacy or nf_tables) with iptables-save and iptables-restore
"""

EXAMPLES = r"""
- name: Allow the registry port from cluster members only
  gymfleet.cluster.iptables_chain:
    chain: GYMFLEET-INPUT
    rules:
      - -s 10.0.0.11/32 -p tcp -m tcp --dport 6379 -j ACCEPT
      - -i lo -p tcp -m tcp --dport 6379 -j ACCEPT
      - -p tcp -m tcp --dport 6379 -j DROP
    jumps:
      - chain: INPUT

- name: SNAT a container subnet, in the nat table
  gymfleet.cluster.iptables_chain:
    table: nat
    chain: GYMFLEET-SNAT
    rules:
      - -s 192.168.20.0/24 -d 192.168.30.0/24 -j SNAT --to-source 10.0.0.12
    jumps:
      - chain: POSTROUTING

- name: Allow a port from members, and keep the rules for the boot unit
  gymfleet.cluster.iptables_chain:
    chain: GYMFLEET-INPUT
    rules:
      - -s 10.0.0.11/32 -p tcp -m tcp --dport 6379 -j ACCEPT
    jumps:
      - chain: INPUT
    save_path: /etc/gymfleet/firewall/GYMFLEET-INPUT.rules

- name: Remove the chain and its jumps
  gymfleet.cluster.iptables_chain:
    chain: GYMFLEET-INPUT
    state: absent
"""

RETURN = r"""
rules:
  description: The chain's rules after the run, as iptables-save prints them.
  returned: always
  type: list
  elements: str
payload:
  description: The iptables-restore input applied (or, in check mode, that would be).
  returned: when changed
  type: str
saved:
  description: Whether O(save_path) was written or removed (or, in check mode, would be).
  returned: when O(save_path) is given
  type: bool
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import (
    jump_rule,
    normalize_rule,
    parse_save,
    restore_payload,
)


class ChainManager:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.params = module.params
        family = "ip6tables" if self.params["ip_version"] == "ipv6" else "iptables"
        self.save = module.get_bin_path(f"{family}-save", required=True)
        self.restore = module.get_bin_path(f"{family}-restore", required=True)
        self.binary = module.get_bin_path(family, required=True)

    def read(self):
        rc, out, err = self.module.run_command([self.save, "-t", self.params["table"]])
        if rc != 0:
            self.module.fail_json(msg=f"iptables-save -t {self.params['table']} failed: {err.strip()}")
        return parse_save(out, self.params["chain"])

    def _normal(self, rules):
        try:
            return [normalize_rule(rule, self.params["ip_version"]) for rule in rules]
        except ValueError as exc:
            self.module.fail_json(msg=f"chain {self.params['chain']}: {exc}")

    def _has_jump(self, jumps, jump) -> bool:
        wanted = normalize_rule(jump_rule(jump, self.params["chain"]), self.params["ip_version"])
        return any(normalize_rule(rule, self.params["ip_version"]) == wanted
                   for rule in jumps.get(jump["chain"], []))

    def _describe(self, exists, rules, jumps):
        """The chain and the jumps into it, as iptables-save lines, for the diff."""
        if not exists:
            return ""
        lines = [f"-A {parent} {rule}" for parent, parent_rules in sorted(jumps.items()) for rule in parent_rules]
        lines += [f"-A {self.params['chain']} {rule}" for rule in rules]
        return "\n".join(lines) + "\n"

    def _apply(self, args, data=None):
        rc, _, err = self.module.run_command(args, data=data, binary_data=True)
        if rc != 0:
            self.module.fail_json(msg=f"{' '.join(args[:4])} failed: {err.strip()}")

    def keep_copy(self, result, content):
        """Keep content (None: no file) at save_path; report whether that changed anything."""
        path = self.params["save_path"]
        if not path:
            return
        try:
            with open(path) as handle:
                before = handle.read()
        except FileNotFoundError:
            before = None
        result["saved"] = before != content
        if not result["saved"]:
            return
        result["changed"] = True
        if self.module.check_mode:
            return
        if content is None:
            os.remove(path)
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.gymfleet-tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(content)
        self.module.atomic_move(tmp, path)
        os.chmod(path, 0o600)  # atomic_move gives a new file the default mode

    def present(self, result):
        chain, table = self.params["chain"], self.params["table"]
        self.keep_copy(result, "# Managed by gymfleet: the rules of " + chain + ", for iptables-restore --noflush.\n"
                  + restore_payload(table, chain, self.params["rules"], []))
        exists, current, jumps = self.read()
        missing = [jump for jump in self.params["jumps"] if not self._has_jump(jumps, jump)]
        if exists and self._normal(current) == self._normal(self.params["rules"]) and not missing:
            result["rules"] = current
            return
        payload = restore_payload(table, chain, self.params["rules"], missing)
        after_jumps = {parent: list(rules) for parent, rules in jumps.items()}
        for jump in missing:
            after_jumps.setdefault(jump["chain"], []).append(jump_rule(jump, chain))
        result.update(changed=True, payload=payload, rules=self.params["rules"], diff={
            "before": self._describe(exists, current, jumps),
            "after": self._describe(True, self.params["rules"], after_jumps),
        })
        if self.module.check_mode:
            return
        self._apply([self.restore, "--noflush"], data=payload)
        exists, current, _ = self.read()
        if self._normal(current) != self._normal(self.params["rules"]):
            self.module.fail_json(
                msg=f"chain {chain}: iptables-save shows rules that differ from the ones given, so every run "
                    f"would report a change; fix: write the rules as iptables-save prints them: {current}"
            )
        result["rules"] = current

    def absent(self, result):
        chain, table = self.params["chain"], self.params["table"]
        self.keep_copy(result, None)
        exists, current, jumps = self.read()
        result["rules"] = []
        if not exists:
            return
        result.update(changed=True, diff={"before": self._describe(exists, current, jumps), "after": ""})
        if self.module.check_mode:
            return
        for parent, rules in jumps.items():
            for rule in rules:
                self._apply([self.binary, "-t", table, "-D", parent, *shlex.split(rule)])
        self._apply([self.binary, "-t", table, "-F", chain])
        self._apply([self.binary, "-t", table, "-X", chain])


def main():
    module = AnsibleModule(
        argument_spec={
            "chain": {"type": "str", "required": True},
            "table": {"type": "str", "choices": ["filter", "nat", "mangle", "raw"], "default": "filter"},
            "rules": {"type": "list", "elements": "str", "default": []},
            "jumps": {"type": "list", "elements": "dict", "default": [], "options": {
                "chain": {"type": "str", "required": True},
                "position": {"type": "int", "default": 1},
                "match": {"type": "str", "default": ""},
            }},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "ip_version": {"type": "str", "choices": ["ipv4", "ipv6"], "default": "ipv4"},
            "save_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    manager = ChainManager(module)
    result = {"changed": False}
    getattr(manager, module.params["state"])(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
