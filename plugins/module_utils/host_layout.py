"""A component's packages, users, directories and files converged in one pass (modules host_files and services)."""

from __future__ import annotations

import base64
import grp
import os
import pwd
import shlex
import tempfile

from ansible_collections.gymfleet.cluster.plugins.module_utils.debian_packages import (
    PackageError,
    install_packages,
    missing_packages,
)

FILE_OPTIONS = {
    "dest": {"type": "path", "required": True},
    "content": {"type": "str"},
    "content_base64": {"type": "str"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "validate": {"type": "str"},
}
# The action plugin moves the files marked secret here: the same, with their content never logged.
SECRET_FILE_OPTIONS = {**FILE_OPTIONS, "content": {"type": "str", "no_log": True},
                       "content_base64": {"type": "str", "no_log": True}}


class LayoutError(Exception):
    pass


class Rejected(LayoutError):
    """A validate command refused a file's new content."""

    def __init__(self, dest: str, command: str, rc: int, out: str, err: str):
        super().__init__(f"{dest}: {command} rejected the new content (exit {rc}), so the file was left as it was: "
                         f"{(err or out).strip()}")
        self.details = {"dest": dest, "rc": rc, "stdout": out, "stderr": err}


def _validate(command: str, candidate: str, dest: str, run) -> None:
    argv = [word.replace("%s", candidate) for word in shlex.split(command)]
    rc, out, err = run(argv)
    if rc != 0:
        raise Rejected(dest, command, rc, out, err)


def _ids(owner: str | None, group: str | None) -> tuple[int, int]:
    try:
        user = pwd.getpwnam(owner) if owner else pwd.getpwuid(os.getuid())
        gid = grp.getgrnam(group).gr_gid if group else user.pw_gid
    except KeyError as exc:
        raise LayoutError(f"no such user or group {exc}; fix: create it first, or correct the name") from None
    return user.pw_uid, gid


def _mode(text: str | None, path: str) -> int | None:
    if text is None:
        return None
    try:
        return int(str(text), 8)
    except ValueError:
        raise LayoutError(f"{path}: mode {text!r} is not octal; fix: write it like \"0644\"") from None


def _ids_or_pending(owner: str | None, group: str | None, check: bool) -> tuple[int, int] | None:
    """The ids, or None in check mode when the user does not exist yet (a task before this one creates it)."""
    try:
        return _ids(owner, group)
    except LayoutError:
        if check:
            return None
        raise


def converge_user(item: dict, check: bool, run) -> bool:
    """Create the user (and its group) or correct its home and shell; True when something changed."""
    name, home, shell = item["name"], item["home"], item["shell"]
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is None:
        try:
            grp.getgrnam(name)
            group = ["--gid", name]  # a group of that name exists already (a package made it): join it
        except KeyError:
            group = ["--user-group"]
        argv = ["useradd", *(["--system"] if item["system"] else []), *group, "--no-create-home",
                "--home-dir", home, "--shell", shell, name]
    else:
        changes = (["--home", home] if entry.pw_dir != home else []) + (["--shell", shell] if entry.pw_shell != shell
                                                                       else [])
        if not changes:
            return False
        argv = ["usermod", *changes, name]
    if not check:
        rc, _, err = run(argv)
        if rc != 0:
            raise LayoutError(f"user {name}: {argv[0]} failed: {err.strip()}; fix: correct the user's name or home")
    return True


def converge_directory(item: dict, check: bool) -> bool:
    path = item["path"]
    ids = _ids_or_pending(item.get("owner"), item.get("group"), check) if item.get("owner") or item.get("group") \
        else (None, None)
    if ids is None:
        return True
    uid, gid = ids
    mode = _mode(item.get("mode"), path)
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            raise LayoutError(f"{path} exists and is not a directory; fix: move it away")
        if check:
            return True
        os.makedirs(path)
        changed = True
    status = os.stat(path)
    if uid is not None and (status.st_uid, status.st_gid) != (uid, gid):
        changed = True
        if not check:
            os.chown(path, uid, gid)
    if mode is not None and (status.st_mode & 0o7777) != mode:
        changed = True
        if not check:
            os.chmod(path, mode)
    return changed


def converge_file(item: dict, secret: bool, check: bool, run=None) -> tuple[bool, dict | None]:
    path = item["dest"]
    if item.get("validate") and "%s" not in item["validate"]:
        raise LayoutError(f"{path}: validate {item['validate']!r} has no %s for the candidate's path; fix: add it")
    content = base64.b64decode(item["content_base64"]) if item.get("content_base64") is not None \
        else (item.get("content") or "").encode()
    ids = _ids_or_pending(item.get("owner"), item.get("group"), check)
    if ids is None:
        return True, None
    uid, gid = ids
    mode = _mode(item.get("mode"), path)
    mode = mode if mode is not None else (0o600 if secret else 0o644)
    try:
        with open(path, "rb") as handle:
            before = handle.read()
        status = os.stat(path)
        same = before == content and (status.st_uid, status.st_gid, status.st_mode & 0o7777) == (uid, gid, mode)
    except FileNotFoundError:
        before, same = None, False
    if same:
        return False, None
    diff = None
    if before != content:
        shown = not secret and b"\0" not in content + (before or b"")
        hidden = "secret" if secret else "binary"
        diff = {"before_header": path, "after_header": path,
                "before": (before or b"").decode(errors="replace") if shown else
                f"({hidden})\n" if before is not None else "",
                "after": content.decode(errors="replace") if shown else f"({hidden}, changed)\n"}
    if not check:
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise LayoutError(f"{path}: its directory {folder} does not exist; fix: declare it in directories")
        # The destination's extension kept: some validators (Envoy) read the format from it.
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                             suffix=os.path.splitext(path)[1])
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.chown(temporary, uid, gid)
            os.chmod(temporary, mode)
            if item.get("validate") and before != content:
                _validate(item["validate"], temporary, path, run)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    return True, diff


LAYOUT_OPTIONS = {
    "packages": {"type": "list", "elements": "str", "default": []},
    "users": {"type": "list", "elements": "dict", "default": [], "options": {
        "name": {"type": "str", "required": True}, "home": {"type": "path", "required": True},
        "shell": {"type": "path", "default": "/usr/sbin/nologin"},
        "system": {"type": "bool", "default": True}}},
    "directories": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "path", "required": True},
        "owner": {"type": "str"}, "group": {"type": "str"}, "mode": {"type": "str"}}},
    "files": {"type": "list", "elements": "dict", "default": [], "options": FILE_OPTIONS},
    "secret_files": {"type": "list", "elements": "dict", "default": [], "options": SECRET_FILE_OPTIONS},
    "absent": {"type": "list", "elements": "path", "default": []},
}


def remove_file(path: str, check: bool) -> tuple[bool, dict | None]:
    """Remove a file or symlink the component no longer wants; a directory is refused (its content is not ours to
    judge). Returns whether it was there, and the diff."""
    if not os.path.lexists(path):
        return False, None
    if os.path.isdir(path) and not os.path.islink(path):
        raise LayoutError(f"{path}: listed in absent but is a directory; fix: list only files there")
    if not check:
        os.unlink(path)
    return True, {"before_header": path, "after_header": path, "before": "present\n", "after": "absent\n"}


def converge_layout(params: dict, check: bool, run) -> tuple[dict, list[dict]]:
    """Packages, then users, directories, files and the files to remove: what changed (host_files' return values)
    and the diffs.

    On failure raises LayoutError (PackageError, OSError) with `partial` set to what changed before it."""
    result = {"installed": [], "users": [], "created": [], "written": [], "removed": []}
    diffs = []
    try:
        missing = missing_packages(params["packages"], run)
        if missing and not check:
            install_packages(missing, run)
        result["installed"] = missing
        for item in params["users"]:
            if converge_user(item, check, run):
                result["users"].append(item["name"])
        for item in params["directories"]:
            if converge_directory(item, check):
                result["created"].append(item["path"])
        for secret, items in ((False, params["files"]), (True, params["secret_files"])):
            for item in items:
                changed, diff = converge_file(item, secret, check, run)
                if changed:
                    result["written"].append(item["dest"])
                    if diff:
                        diffs.append(diff)
        for path in params.get("absent", []):
            removed, diff = remove_file(path, check)
            if removed:
                result["removed"].append(path)
                diffs.append(diff)
    except (LayoutError, PackageError, OSError) as exc:
        exc.partial = result
        raise
    return result, diffs


def host_files_result(params: dict, check: bool, diff: bool, run) -> dict:
    """host_files' whole result for validated params (the module's, or its action's on the controller): what
    changed, the diffs when asked, or failed with the message, what changed before it and what a validator said."""
    try:
        result, diffs = converge_layout(params, check, run)
    except (LayoutError, PackageError, OSError) as exc:
        extra = {"rejected": exc.details} if isinstance(exc, Rejected) else {}
        return {"failed": True, "msg": str(exc), **getattr(exc, "partial", {}), **extra}
    result["changed"] = any(result.values())
    if diff and diffs:
        result["diff"] = diffs
    return result
