"""Controller half of gymfleet.cluster.host_files: controller files, trees and templates become content."""

from __future__ import annotations

import base64
import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

# Left behind on the controller by Python itself, never part of what is copied.
SKIPPED_DIRS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc",)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _template(self, name: str, extra: dict, task_vars: dict) -> str:
        path = self._find_needle("templates", name)
        data = trust_as_template(self._loader.get_text_file_contents(path))
        searchpath = [os.path.dirname(path), *task_vars.get("ansible_search_path", [])]
        templar = self._templar.copy_with_new_env(searchpath=searchpath,
                                                  available_variables={**task_vars, **extra})
        return templar.template(data, escape_backslashes=False)

    def _tree(self, item: dict, root: str) -> tuple[list[dict], list[dict]]:
        """The directories and files under a controller directory, placed under item's dest."""
        owner, group = item.get("owner"), item.get("group")
        directories, files = [{"path": item["dest"], "owner": owner, "group": group, "mode": "0755"}], []
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_DIRS)
            relative = os.path.relpath(folder, root)
            target = item["dest"] if relative == "." else os.path.join(item["dest"], relative)
            if relative != ".":
                directories.append({"path": target, "owner": owner, "group": group, "mode": "0755"})
            for name in sorted(n for n in names if not n.endswith(SKIPPED_SUFFIXES)):
                source = os.path.join(folder, name)
                with open(source, "rb") as handle:
                    data = handle.read()
                files.append({"dest": os.path.join(target, name), "owner": owner, "group": group,
                              "mode": "0755" if os.access(source, os.X_OK) else "0644",
                              "content_base64": base64.b64encode(data).decode()})
        return directories, files

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        directories = [dict(d) for d in args.get("directories") or []]
        files, secret_files = [], []
        try:
            for item in args.get("files") or []:
                item = dict(item)
                if "dest" not in item:
                    raise AnsibleError(f"host_files: a file has no dest: {sorted(item)}")
                sources = [key for key in ("src", "template", "content", "content_base64") if item.get(key) is not None]
                if len(sources) != 1:
                    raise AnsibleError(f"host_files: {item['dest']}: give exactly one of src, template, content, "
                                       f"content_base64 (got {', '.join(sources) or 'none'})")
                secret = bool(item.pop("secret", False))
                extra = item.pop("vars", None) or {}
                wanted = secret_files if secret else files
                if item.get("template") is not None:
                    item["content"] = self._template(item.pop("template"), extra, task_vars)
                elif item.get("src") is not None:
                    source = self._find_needle("files", item.pop("src"))
                    if os.path.isdir(source):
                        tree_dirs, tree_files = self._tree(item, source)
                        directories += tree_dirs
                        wanted += [{**f, "mode": item.get("mode") or f["mode"]} for f in tree_files]
                        continue
                    with open(source, "rb") as handle:
                        item["content_base64"] = base64.b64encode(handle.read()).decode()
                wanted.append(item)
        except (AnsibleError, OSError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self._execute_module(
            module_name="gymfleet.cluster.host_files", task_vars=task_vars,
            # The rest (packages, users, ...) as given: the module checks them.
            module_args={**args, "directories": directories, "files": files, "secret_files": secret_files}))
        result.pop("invocation", None)
        return result
