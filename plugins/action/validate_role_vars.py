"""Validate one host's variables for one or more roles against the role's own meta/argument_specs.yml.

Documented in plugins/modules/validate_role_vars.py, as ansible-doc expects for action plugins.
"""

from __future__ import annotations

import difflib
import functools
import glob
import os
import re

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
ROLES_DIR = os.path.join(ROOT, "roles")
SET_FACT = {"set_fact", "ansible.builtin.set_fact"}
SPEC_KEYS = {"type", "required", "default", "choices", "elements", "options", "no_log", "aliases"}


def _clean(spec: dict) -> dict:
    """Only the keys ArgumentSpecValidator understands; documentation keys are dropped."""
    out = {}
    for name, option in spec.items():
        kept = {k: v for k, v in option.items() if k in SPEC_KEYS}
        if option.get("type") not in (None, "str", "raw", "path") and isinstance(kept.get("default"), str):
            kept.pop("default")  # a prose default ("first host of ...") is documentation only
        if "options" in kept:
            kept["options"] = _clean(kept["options"])
        out[name] = kept
    return out


def strict_problems(spec: dict, values: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(variable, problem) pairs for values whose type would be accepted leniently but misbehave."""
    problems = []
    for name, option in spec.items():
        if name not in values or values[name] is None:
            continue
        value, label = values[name], f"{prefix}{name}"
        if option.get("type") == "bool" and not isinstance(value, bool):
            problems.append((label, f"is {value!r}, not a boolean; fix: write true or false without quotes"))
        if option.get("options") and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    problems += strict_problems(option["options"], item, f"{label}[{index}].")
    return problems


def load_spec(role: str, entry_point: str) -> dict:
    role_dir = role if os.sep in role else os.path.join(ROLES_DIR, role)
    path = os.path.join(role_dir, "meta", "argument_specs.yml")
    try:
        with open(path) as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
    except (OSError, KeyError, TypeError) as exc:
        raise AnsibleError(f"validate_role_vars: cannot read the argument specs of role {role}: {exc}") from exc
    if entry_point not in specs:
        raise AnsibleError(f"validate_role_vars: role {role} has no entry point {entry_point!r}")
    return specs[entry_point].get("options", {})


def _names_set(node, found: set) -> None:
    """Every variable name a task tree sets: set_fact keys, register, loop_var and vars: keys."""
    if isinstance(node, list):
        for item in node:
            _names_set(item, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in SET_FACT and isinstance(value, dict):
                found.update(value)
            elif key in ("register", "loop_var") and isinstance(value, str):
                found.add(value)
            elif key == "vars" and isinstance(value, dict):
                found.update(value)
            _names_set(value, found)


@functools.lru_cache(maxsize=1)
def names_the_collection_sets() -> frozenset:
    """Variables the collection itself defines beside the argument specs: the facts and results its roles and
    playbooks set or register, role vars and defaults, and the outputs each role's specs name as C(variable)."""
    found: set = set()
    for path in glob.glob(os.path.join(ROLES_DIR, "*", "*", "*.yml")) + glob.glob(os.path.join(ROOT, "playbooks",
                                                                                             "*.yml")):
        try:
            with open(path) as handle:
                data = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue
        if os.path.basename(os.path.dirname(path)) in ("vars", "defaults") and isinstance(data, dict):
            found.update(data)
        elif path.endswith("argument_specs.yml"):
            with open(path) as handle:
                found.update(re.findall(r"C\(([a-z][a-z0-9_]*)\)", handle.read()))
        else:
            _names_set(data, found)
    return frozenset(found)


def unknown_role_variables(role: str, spec: dict, names) -> list[tuple[str, str]]:
    """(variable, nearest known variable or '') for each name that carries the role's prefix but that neither the
    role's specs nor the collection define: a misspelling, which Ansible would silently ignore."""
    prefix = f"{os.path.basename(role.rstrip(os.sep))}_"
    known = set(spec) | names_the_collection_sets()
    unknown = sorted(name for name in names if name.startswith(prefix) and name not in known)
    # Compared without the prefix, which every candidate shares and which would make any two names look alike.
    suffixes = {name[len(prefix):]: name for name in spec if name.startswith(prefix)}
    return [(name, suffixes[near[0]] if (near := difflib.get_close_matches(name[len(prefix):], sorted(suffixes), n=1,
                                                                          cutoff=0.7)) else "")
            for name in unknown]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _role_problems(self, role: str, entry_point: str, task_vars: dict) -> tuple[list[str], list[str]]:
        """The names checked and one line per problem of this host's variables for one role."""
        spec = load_spec(role, entry_point)
        host = task_vars.get("inventory_hostname", "?")
        values = {}
        lines = []
        for name in spec:
            if name in task_vars:
                try:
                    values[name] = self._templar.template(task_vars[name])
                except AnsibleError as exc:
                    lines.append(
                        f"host {host}: {name} cannot be templated ({exc.message}); fix: correct its expression"
                    )
        validation = ArgumentSpecValidator(_clean(spec)).validate(values)
        for error in validation.errors:
            lines.append(
                f"host {host}: role {role}: {error}; fix: see `ansible-doc -t role gymfleet.cluster.{role}`"
            )
        for name, problem in strict_problems(spec, values):
            lines.append(f"host {host}: {name} {problem}")
        for name, nearest in unknown_role_variables(role, spec, task_vars):
            fix = f"did you mean {nearest}?" if nearest else f"remove it; the role's variables are listed by " \
                f"`ansible-doc -t role gymfleet.cluster.{role}`"
            lines.append(f"host {host}: {name} is not a variable of role {role}, so it would be ignored; fix: {fix}")
        return sorted(values), lines

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        if "role" not in args and "roles" not in args:
            return {"failed": True, "msg": "validate_role_vars: give role or roles"}
        # A host that gets no role (in no group of one) has nothing to check.
        roles = list(args.get("roles") or []) + ([args["role"]] if args.get("role") else [])
        checked, lines = [], []
        for role in roles:
            names, problems = self._role_problems(role, args.get("entry_point", "main"), task_vars)
            checked += names
            lines += problems
        result.update(checked=sorted(set(checked)), changed=False)
        if lines:
            result.update(failed=True, msg="\n".join(lines), problems=lines)
        return result
