"""Controller half of a host layout (action plugins host_files and services): controller files, trees and
templates become content, so the host gets plain data."""

from __future__ import annotations

import base64
import os

from ansible.errors import AnsibleError
from ansible.template import trust_as_template

# Left behind on the controller by Python itself, never part of what is copied.
SKIPPED_DIRS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc",)


def _template(action, name: str, extra: dict, task_vars: dict) -> str:
    path = action._find_needle("templates", name)
    data = trust_as_template(action._loader.get_text_file_contents(path))
    searchpath = [os.path.dirname(path), *task_vars.get("ansible_search_path", [])]
    templar = action._templar.copy_with_new_env(searchpath=searchpath, available_variables={**task_vars, **extra})
    return templar.template(data, escape_backslashes=False)


def tree(item: dict, root: str) -> tuple[list[dict], list[dict]]:
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


def expand_layout(action, layout: dict, task_vars: dict) -> dict:
    """host_files' arguments with every src and template turned into content and the secret files set apart.

    Raises AnsibleError (or OSError) naming the file."""
    directories = [dict(d) for d in layout.get("directories") or []]
    files, secret_files = [], []
    for item in layout.get("files") or []:
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
            item["content"] = _template(action, item.pop("template"), extra, task_vars)
        elif item.get("src") is not None:
            source = action._find_needle("files", item.pop("src"))
            if os.path.isdir(source):
                tree_dirs, tree_files = tree(item, source)
                directories += tree_dirs
                wanted += [{**f, "mode": item.get("mode") or f["mode"]} for f in tree_files]
                continue
            with open(source, "rb") as handle:
                item["content_base64"] = base64.b64encode(handle.read()).decode()
        wanted.append(item)
    # The rest (packages, users, ...) as given: the module checks them.
    return {**layout, "directories": directories, "files": files, "secret_files": secret_files}
