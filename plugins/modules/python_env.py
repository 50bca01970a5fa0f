#!/usr/bin/python
"""Create a venv or conda environment and install its pinned requirements, in one call per host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: python_env
short_description: A venv or conda environment with pinned requirements, installed only when they change
version_added: 0.2.0
author: gymfleet developers
description:
  - Creates the environment when C(<path>/bin/python) is missing (a venv with O(python), or
    C(conda create --prefix) with O(conda_executable)), installing O(system_packages) first for a venv.
  - Records what it installs in C(<path>/gymfleet-requirements.txt) and installs only when that record differs
    from O(packages) and O(wheels), or with O(force_install), so a rerun with the same pins does no package work.
  - The record is written before the install and removed when the install fails, so the next run tries again.
  - The action plugin of the same name puts the host's name in front of a failure's message.
options:
  path:
    description: Where the environment lives.
    type: path
    required: true
  kind:
    description: C(venv) (C(python -m venv)) or C(conda) (an existing conda, mamba or micromamba).
    type: str
    choices: [venv, conda]
    default: venv
  python:
    description: Interpreter that creates a venv.
    type: path
    default: /usr/bin/python3
  packages:
    description: Pinned requirement lines, such as C(ray[default]==2.60.0).
    type: list
    elements: str
    default: []
  installer:
    description: Installer for a venv; C(auto) uses uv when the host has it on PATH, else pip. Conda uses pip.
    type: str
    choices: [auto, uv, pip]
    default: auto
  conda_executable:
    description: Path to conda, mamba or micromamba; required with O(kind=conda).
    type: str
    default: ""
  conda_python:
    description: Python version of a new conda environment.
    type: str
    default: "3.11"
  wheelhouse:
    description: A directory of wheels on the host; when set, the install uses only it (C(--no-index --find-links)).
    type: path
  wheels:
    description: The wheelhouse's file names, recorded with the pins so that other wheels cause an install.
    type: list
    elements: str
    default: []
  force_install:
    description: Install even when the record matches (the wheelhouse's files changed under the same names).
    type: bool
    default: false
  install_args:
    description: More arguments for pip or uv pip, split like a shell would (C(--index-url https://mirror/simple)).
    type: str
    default: ""
  owner:
    description: Owner of the environment's files; they are given to it after a creation or an install.
    type: str
    default: root
  system_packages:
    description: Debian packages a venv needs, installed when missing before a venv is created.
    type: list
    elements: str
    default: [python3-venv]
attributes:
  check_mode:
    support: full
    description: Reports whether it would create the environment or install, changing nothing.
  diff_mode:
    support: full
    description: The requirements record before and after.
requirements:
  - python3-venv for a venv; uv or pip in the environment
"""

EXAMPLES = r"""
- name: Install Ray into its own venv
  gymfleet.cluster.python_env:
    path: /opt/gymfleet/ray/venv
    packages: ["ray[default]==2.60.0"]
  register: ray_env

- name: Install from a wheelhouse copied to the host, never from an index
  gymfleet.cluster.python_env:
    path: /opt/gymfleet/venv
    packages: [gymfleet_probe==1.0]
    wheelhouse: /var/cache/gymfleet/wheelhouse
    wheels: [gymfleet_probe-1.0-py3-none-any.whl]
"""

RETURN = r"""
exists:
  description: Whether the environment exists after the call (false in check mode before its first creation).
  returned: always
  type: bool
created:
  description: Whether the environment was created (or would be, in check mode).
  returned: always
  type: bool
installed:
  description: Whether the requirements were installed (or would be, in check mode).
  returned: always
  type: bool
requirements:
  description: The path of the requirements record.
  returned: always
  type: str
  sample: /opt/gymfleet/venv/gymfleet-requirements.txt
python:
  description: The environment's interpreter.
  returned: always
  type: str
  sample: /opt/gymfleet/venv/bin/python
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.debian_packages import PackageError
from ansible_collections.gymfleet.cluster.plugins.module_utils.python_envs import (
    ENVIRONMENT_OPTIONS,
    EnvError,
    converge_environment,
)


def main():
    module = AnsibleModule(argument_spec=ENVIRONMENT_OPTIONS, supports_check_mode=True)
    try:
        result, diff = converge_environment(module.params, module.check_mode, module.run_command)
    except (EnvError, PackageError, OSError) as exc:
        module.fail_json(msg=str(exc), **exc.partial)
    result.pop("path")
    result["changed"] = result["installed"]
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
