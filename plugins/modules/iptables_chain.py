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
    when the parent chain has none, and a jump into O(chain) from a parent that O(jumps) names but that no entry
    describes (another C(match), such as a former interface) is removed.
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
    description: Where traffic enters the chain; in the parent chains named here, only these jumps into it remain.
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import CHAIN_OPTIONS, ChainError, converge_chain


def main():
    module = AnsibleModule(argument_spec=CHAIN_OPTIONS, supports_check_mode=True)
    try:
        result = converge_chain(module, module.params)
    except ChainError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
