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

import os
import shlex
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.debian_packages import (
    PackageError,
    install_packages,
    missing_packages,
)

RECORD = "gymfleet-requirements.txt"


class EnvError(Exception):
    """An environment that could not be made or installed, with the variable and the fix in the message."""


def requirements_text(path: str, packages: list[str], wheelhouse: str | None, wheels: list[str]) -> str:
    """What the record holds: the pins, and where offline wheels came from."""
    lines = [f"# Managed by gymfleet: installed into {path}.", *packages]
    if wheelhouse:
        lines += [f"# installed offline from {wheelhouse}:", "# " + " ".join(sorted(wheels))]
    return "\n".join(lines) + "\n"


def install_argv(params: dict, uv: str | None) -> list[str]:
    """The installer's command line for the record at <path>/gymfleet-requirements.txt."""
    python = os.path.join(params["path"], "bin", "python")
    use_uv = params["kind"] == "venv" and (params["installer"] == "uv" or (params["installer"] == "auto" and uv))
    argv = [uv or "uv", "pip", "install", "--python", python] if use_uv \
        else [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if params["wheelhouse"]:
        argv += ["--no-index", "--find-links", params["wheelhouse"]]
    return argv + shlex.split(params["install_args"]) + ["-r", os.path.join(params["path"], RECORD)]


def _last_line(out: str, err: str) -> str:
    return ((err or out).strip().splitlines() or ["no output"])[-1]


def create(params: dict, run) -> None:
    if params["kind"] == "conda":
        if not params["conda_executable"]:
            raise EnvError("python_env_kind is conda but python_env_conda_executable is empty; fix: set it to the "
                           "path of conda, mamba or micromamba on this host")
        argv = [params["conda_executable"], "create", "--yes", "--prefix", params["path"],
                f"python={params['conda_python']}", "pip"]
    else:
        missing = missing_packages(params["system_packages"], run)
        if missing:
            install_packages(missing, run)
        argv = [params["python"], "-m", "venv", params["path"]]
    rc, out, err = run(argv)
    if rc != 0:
        raise EnvError(f"creating {params['path']} failed: {_last_line(out, err)}; fix: check python_env_python "
                       "(or python_env_conda_executable) and that python_env_path's parent is writable")


def install(params: dict, text: str, run) -> None:
    record = os.path.join(params["path"], RECORD)
    with open(record, "w") as handle:
        handle.write(text)
    if not params["packages"]:
        return
    rc, out, err = run(install_argv(params, shutil.which("uv")))
    if rc != 0:
        os.remove(record)
        raise EnvError(f"installing python_env_packages into {params['path']} failed: {_last_line(out, err)}; "
                       "fix: check the pins in python_env_packages and that the host reaches the index or the "
                       "wheelhouse")


def give_to_owner(path: str, owner: str, run) -> None:
    rc, out, err = run(["chown", "-R", "--", f"{owner}:", path])
    if rc != 0:
        raise EnvError(f"giving {path} to {owner} failed: {_last_line(out, err)}; fix: check python_env_owner")


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "kind": {"type": "str", "choices": ["venv", "conda"], "default": "venv"},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "installer": {"type": "str", "choices": ["auto", "uv", "pip"], "default": "auto"},
            "conda_executable": {"type": "str", "default": ""},
            "conda_python": {"type": "str", "default": "3.11"},
            "wheelhouse": {"type": "path"},
            "wheels": {"type": "list", "elements": "str", "default": []},
            "force_install": {"type": "bool", "default": False},
            "install_args": {"type": "str", "default": ""},
            "owner": {"type": "str", "default": "root"},
            "system_packages": {"type": "list", "elements": "str", "default": ["python3-venv"]},
        },
        supports_check_mode=True,
    )
    params = module.params
    python = os.path.join(params["path"], "bin", "python")
    record = os.path.join(params["path"], RECORD)
    text = requirements_text(params["path"], params["packages"], params["wheelhouse"], params["wheels"])
    existed = os.access(python, os.X_OK)
    try:
        with open(record) as handle:
            recorded = handle.read()
    except OSError:
        recorded = None
    created = not existed
    installed = created or params["force_install"] or recorded != text
    result = {"changed": installed, "created": created, "installed": installed, "exists": existed,
              "requirements": record, "python": python}
    if module._diff and installed:
        result["diff"] = {"before": recorded or "", "after": text, "before_header": record, "after_header": record}
    if module.check_mode or not installed:
        module.exit_json(**result)
    try:
        if created:
            create(params, module.run_command)
        install(params, text, module.run_command)
        if params["owner"] != "root":
            give_to_owner(params["path"], params["owner"], module.run_command)
    except (EnvError, PackageError, OSError) as exc:
        module.fail_json(msg=str(exc), created=created, installed=False, exists=os.access(python, os.X_OK),
                         requirements=record, python=python)
    result["exists"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
