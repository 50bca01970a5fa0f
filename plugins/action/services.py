"""Controller half of gymfleet.cluster.services: the layout's controller files, trees and templates, and each
environment's wheelhouse, become content; the host's name goes in front of a failure's message.

Documented in plugins/modules/services.py.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.layout import expand_layout, tree


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _module_args(self, task_vars: dict) -> dict:
        args = dict(self._task.args)
        layout = dict(args.get("layout") or {})
        environments = []
        for entry in args.get("environments") or []:
            entry = dict(entry)
            source = entry.pop("wheelhouse_src", "") or ""
            if source:
                if not entry.get("wheelhouse"):
                    raise AnsibleError(f"services: environment {entry.get('path')}: wheelhouse_src needs wheelhouse, "
                                       "the directory on the host it is copied to")
                directories, files = tree({"dest": entry["wheelhouse"]}, self._find_needle("files", source))
                layout["directories"] = [*(layout.get("directories") or []), *directories]
                layout["files"] = [*(layout.get("files") or []), *files]
                entry["wheels"] = sorted(os.path.basename(f["dest"]) for f in files
                                         if os.path.dirname(f["dest"]) == entry["wheelhouse"].rstrip("/")
                                         and f["dest"].endswith(".whl"))
            environments.append(entry)
        if environments:
            args["environments"] = environments
        if layout:
            args["layout"] = expand_layout(self, layout, task_vars)
        return args

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname")
        try:
            module_args = self._module_args(task_vars)
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg=f"host {host}: {exc}")
            return result
        result.update(self._execute_module(module_name="gymfleet.cluster.services", task_vars=task_vars,
                                           module_args=module_args))
        result.pop("invocation", None)
        if result.get("failed") and result.get("msg"):
            result["msg"] = f"host {host}: {result['msg']}"
        return result
