"""Controller half of gymfleet.cluster.services: the layout's controller files, trees and templates become
content, each environment's wheelhouse is copied (only the wheels that differ); a deferred call is queued for the
host and a flush runs the queue in one module run; the host's name goes in front of a failure's message.

Documented in plugins/modules/services.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.layout import expand_layout


class EngineQueue:
    """The calls deferred for one host, in a file of Ansible's local temporary directory of this run: the main
    process made it before forking the workers that run tasks (so every task of the run finds the same one) and
    removes it when the run ends. The calls carry secrets (file contents), so only this user reads the file."""

    def __init__(self, host: str):
        self.path = Path(C.DEFAULT_LOCAL_TMP) / "gymfleet-engine" / f"{host}.json"

    def append(self, call: dict) -> None:
        calls = self.take() + [call]
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(calls, handle)

    def take(self) -> list[dict]:
        """The queued calls, the queue emptied."""
        try:
            calls = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        self.path.unlink()
        return calls


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

    def _module_args(self, args: dict, task_vars: dict) -> tuple[dict, bool]:
        """The module's arguments, and whether a wheelhouse copy changed the host."""
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
        args = dict(self._task.args)
        defer, flush = boolean(args.pop("defer", False)), boolean(args.pop("flush", False))
        queue = EngineQueue(host)
        try:
            if flush:
                if args:
                    raise AnsibleError(f"services: flush takes no other option, got {', '.join(sorted(args))}")
                calls = queue.take()
                if not calls:
                    result.update(skipped=True, changed=False, skip_reason="no call is queued for this host")
                    return result
                module_args, copied = {"calls": calls}, False
            else:
                module_args, copied = self._module_args(args, task_vars)
                if defer and boolean(task_vars.get("gymfleet_engine_batch", False)):
                    queue.append(module_args)
                    result.update(changed=copied, deferred=True,
                                  msg=f"component {module_args.get('component')}: queued for the stage's engine call")
                    return result
                queued = queue.take()
                if queued:
                    # The queue goes first, in the same module run: what this host was to run before this call still
                    # runs before it (a firewall before the ports it protects).
                    module_args = {"calls": queued + [module_args]}
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg=f"host {host}: {exc}")
            return result
        answer = self._execute_module(module_name="gymfleet.cluster.services", task_vars=task_vars,
                                      module_args=module_args)
        if not flush and "calls" in module_args and not answer.get("failed"):
            # This call's own result is the task's, so a later task reads it as if the call had run alone; changed
            # also counts the queued calls, so the run's count of changes stays true.
            own = {key: value for key, value in answer["results"][-1].items() if key != "component"}
            answer = {**own, "results": answer["results"], "changed": answer["changed"],
                      **({"diff": answer["diff"]} if "diff" in answer else {})}
        result.update(answer)
        result.pop("invocation", None)
        result["changed"] = bool(result.get("changed")) or copied
        if result.get("failed") and result.get("msg"):
            result["msg"] = f"host {host}: {result['msg']}"
        return result
