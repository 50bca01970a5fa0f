"""Controller half of gymfleet.cluster.services: the layout's controller files, trees and templates become
content, each environment's wheelhouse is copied (only the wheels that differ); the host's name goes in front of
a failure's message.

Documented in plugins/modules/services.py.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.layout import expand_layout


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _copy_wheelhouse(self, source: str, dest: str, task_vars: dict) -> dict:
        """The controller's wheels copied by Ansible's copy, which compares checksums first and sends only the
        wheels that differ: a wheelhouse may hold gigabytes (torch) that must not travel on every run."""
        task = self._task.copy()
        task.args = {"src": source.rstrip("/") + "/", "dest": dest.rstrip("/") + "/", "mode": "0644",
                     "directory_mode": "0755"}
        copy = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        return copy.run(task_vars=task_vars)

    def _module_args(self, task_vars: dict) -> tuple[dict, bool]:
        """The module's arguments, and whether a wheelhouse copy changed the host."""
        args = dict(self._task.args)
        environments, copied = [], False
        for entry in args.get("environments") or []:
            entry = dict(entry)
            source = entry.pop("wheelhouse_src", "") or ""
            if source:
                if not entry.get("wheelhouse"):
                    raise AnsibleError(f"services: environment {entry.get('path')}: wheelhouse_src needs wheelhouse, "
                                       "the directory on the host it is copied to")
                folder = self._find_needle("files", source)
                copy = self._copy_wheelhouse(folder, entry["wheelhouse"], task_vars)
                if copy.get("failed"):
                    raise AnsibleError(f"copying the wheelhouse {source} to {entry['wheelhouse']} failed: "
                                       f"{copy.get('msg', 'no reason given')}; fix: check python_env_wheelhouse")
                copied |= bool(copy.get("changed"))
                # Wheels that changed under the same names are only seen by a forced install.
                entry["force_install"] = bool(entry.get("force_install")) or bool(copy.get("changed"))
                entry["wheels"] = sorted(name for name in os.listdir(folder) if name.endswith(".whl"))
            environments.append(entry)
        if environments:
            args["environments"] = environments
        if args.get("layout"):
            args["layout"] = expand_layout(self, dict(args["layout"]), task_vars)
        return args, copied

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname")
        try:
            module_args, copied = self._module_args(task_vars)
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg=f"host {host}: {exc}")
            return result
        result.update(self._execute_module(module_name="gymfleet.cluster.services", task_vars=task_vars,
                                           module_args=module_args))
        result.pop("invocation", None)
        result["changed"] = bool(result.get("changed")) or copied
        if result.get("failed") and result.get("msg"):
            result["msg"] = f"host {host}: {result['msg']}"
        return result
