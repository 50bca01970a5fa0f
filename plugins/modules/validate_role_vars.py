#!/usr/bin/python
"""Documentation of the validate_role_vars action plugin (plugins/action/validate_role_vars.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_role_vars
short_description: Check a host's variables for a gymfleet role against the role's argument specs
version_added: 0.1.0
author: gymfleet developers
description:
  - Reads C(meta/argument_specs.yml) of O(role) (or of each of O(roles)) and checks the variables this host would
    give the role (types, choices, required options, nested list-of-dict options).
  - Stricter than C(validate_argument_spec) where a lenient check hides a bug. A C(bool) option must be a
    real boolean, not the string C("false") (which is true in a condition).
  - Fails with one line per problem, each naming the host, the variable and the fix. Changes nothing.
  - Runs on the controller; the preflight role calls it once per host for every role the host will get.
options:
  role:
    description:
      - The role's short name (C(redis)) in this collection, or a path to a role directory.
      - Give O(role), O(roles) or both.
    type: str
  roles:
    description: Several roles at once, each as O(role); the problems of all come in one failure.
    type: list
    elements: str
    default: []
  entry_point:
    description: Which entry point of the argument specs to check.
    type: str
    default: main
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Validate this host's redis variables before anything changes
  gymfleet.cluster.validate_role_vars:
    role: redis

- name: Validate them for every role this host gets, in one task
  gymfleet.cluster.validate_role_vars:
    roles: [firewall, redis, omniboxes]
"""

RETURN = r"""
checked:
  description: >-
    The roles' variables that this host sets (inventory, play or extra vars); the others keep their checked defaults.
  returned: always
  type: list
  elements: str
"""
