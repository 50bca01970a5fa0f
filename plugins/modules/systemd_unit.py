#!/usr/bin/python
"""Install a systemd unit or drop-in described as data, verified with systemd-analyze first."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: systemd_unit
short_description: Install a systemd unit or drop-in from data, verified before it is written
version_added: 0.1.0
author: gymfleet developers
description:
  - Renders O(sections) (section name to directives) as a unit file, checks it with
    C(systemd-analyze verify), and writes it only when it differs from the file on the host.
  - With O(dropin), writes C(<unit_dir>/<name>.d/<dropin>) instead and verifies it applied over the unit's
    existing file, so a drop-in with a typo never reaches systemd.
  - Runs C(systemctl daemon-reload) after a change unless O(daemon_reload=false). Restarting the service is
    left to the caller, which knows whether the change needs it.
  - Unknown keys or sections are errors here although systemd only warns about them, because in generated data
    they are always mistakes.
options:
  name:
    description: Unit name, such as C(omniboxes-node.service) or the template C(omniboxes-instance@.service).
    type: str
    required: true
  sections:
    description:
      - Mapping of section name (C(Unit), C(Service), C(Install)) to a mapping of directives.
      - A list value repeats the directive (C(Environment), C(ExecStartPre)); C(null) leaves it out;
        booleans become C(yes)/C(no).
      - Required when O(state=present).
    type: dict
  dropin:
    description: File name of a drop-in (C(container.conf)) to write under C(<name>.d/) instead of the unit itself.
    type: str
  state:
    description:
      - Whether the unit (or drop-in) file should exist.
      - Removing a unit disables it first, so no C([Install]) symlink is left behind; stopping it is left to the caller.
    type: str
    choices: [present, absent]
    default: present
  unit_dir:
    description: Directory for units the administrator owns.
    type: path
    default: /etc/systemd/system
  validate:
    description: Verify with C(systemd-analyze verify) before writing.
    type: bool
    default: true
  daemon_reload:
    description: Run C(systemctl daemon-reload) after the file changed.
    type: bool
    default: true
  header:
    description: Comment placed at the top of the file.
    type: str
    default: Managed by gymfleet; local changes are overwritten.
attributes:
  check_mode:
    support: full
    description: Reports the change and the diff without writing or reloading.
  diff_mode:
    support: full
notes:
  - The file is written atomically with mode 0644, owned by root.
requirements:
  - systemd (C(systemd-analyze) for O(validate))
"""

EXAMPLES = r"""
- name: Install the node server unit
  gymfleet.cluster.systemd_unit:
    name: omniboxes-node.service
    sections:
      Unit:
        Description: OmniBoxes node server
        After: network-online.target
      Service:
        ExecStart: /opt/omniboxes/venv/bin/python -m omniboxes.node.server --port 8080
        Restart: on-failure
        Environment:
          - PYTHONUNBUFFERED=1
      Install:
        WantedBy: multi-user.target
  register: node_unit

- name: Let a hardened distro unit run in an unprivileged container
  gymfleet.cluster.systemd_unit:
    name: redis-server@.service
    dropin: gymfleet-container.conf
    sections:
      Service:
        PrivateUsers: false
"""

RETURN = r"""
path:
  description: The file that was written or removed.
  returned: always
  type: str
  sample: /etc/systemd/system/omniboxes-node.service
content:
  description: The rendered file.
  returned: when O(state=present)
  type: str
reloaded:
  description: Whether C(systemctl daemon-reload) ran.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import (
    UNIT_NAME_RE,
    UnitError,
    find_unit_file,
    read_unit,
    render_unit,
    verify,
)


def run_module(module: AnsibleModule) -> dict:
    params = module.params
    name = params["name"]
    if not UNIT_NAME_RE.match(name):
        module.fail_json(msg=f"name {name!r} is not a unit name; fix: give e.g. 'myservice.service'")
    if params["dropin"]:
        if "/" in params["dropin"] or not params["dropin"].endswith(".conf"):
            module.fail_json(msg=f"dropin {params['dropin']!r} must be a file name ending in .conf")
        path = os.path.join(params["unit_dir"], f"{name}.d", params["dropin"])
    else:
        path = os.path.join(params["unit_dir"], name)
    before = read_unit(path)
    result = {"changed": False, "path": path, "reloaded": False}

    if params["state"] == "absent":
        after = None
    else:
        try:
            after = render_unit(params["sections"], params["header"])
        except UnitError as exc:
            module.fail_json(msg=f"{name}: {exc}", path=path)
        result["content"] = after
        if after != before and params["validate"]:
            base = find_unit_file(name) if params["dropin"] else None
            problems = verify(module.run_command, name, after, params["dropin"], base)
            if problems:
                module.fail_json(msg=f"{name}: systemd-analyze rejects it: {'; '.join(problems)}", path=path)

    if after == before:
        return result
    result["changed"] = True
    result["diff"] = {"before": before or "", "after": after or "", "before_header": path, "after_header": path}
    if module.check_mode:
        return result
    if after is None:
        if not params["dropin"]:
            # The [Install] symlinks would dangle once the file is gone.
            module.run_command(["systemctl", "disable", "--quiet", name])
        os.remove(path)
    else:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        tmp = f"{path}.gymfleet-tmp"
        with open(tmp, "w") as handle:
            handle.write(after)
        os.chmod(tmp, 0o644)
        module.atomic_move(tmp, path)
    if params["daemon_reload"]:
        module.run_command(["systemctl", "daemon-reload"], check_rc=True)
        result["reloaded"] = True
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "sections": {"type": "dict"},
            "dropin": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "validate": {"type": "bool", "default": True},
            "daemon_reload": {"type": "bool", "default": True},
            "header": {"type": "str", "default": "Managed by gymfleet; local changes are overwritten."},
        },
        required_if=[("state", "present", ["sections"])],
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
