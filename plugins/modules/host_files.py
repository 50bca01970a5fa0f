#!/usr/bin/python
"""Make a host's packages, service users, directories and files what a component declares, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_files
short_description: Converge a component's packages, users, directories and files on a host in one call
version_added: 0.2.0
author: gymfleet developers
description:
  - Installs the packages, creates the service users, the directories and the files a component declares (with
    their owner, group and mode), and changes nothing that already matches; a file is replaced atomically
    (written beside it, then renamed).
  - One call where a role would otherwise run an C(apt) task, and one C(user), C(file), C(copy) or C(template)
    task per path, each a round trip to the host.
  - The action plugin of the same name runs on the controller first. It turns O(files[].src) (a file or a whole
    directory on the controller, looked up like M(ansible.builtin.copy)'s) and O(files[].template) (rendered like
    M(ansible.builtin.template)'s, with O(files[].vars) added) into content, so the host gets plain data.
  - Nothing is ever deleted; a package, user, directory or file that is not declared is left alone.
options:
  packages:
    description:
      - Debian packages the component needs, installed first (C(apt-get update), then C(apt-get install)) when
        C(dpkg) does not have them all; one that is installed is never upgraded. Names only, no versions.
    type: list
    elements: str
    default: []
  users:
    description:
      - Service users to create first (each with a group of its name), or to correct when their home or shell
        differ; the directories and files may then be theirs. A home is never created or moved here (declare it
        in O(directories) with the mode it needs).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      home:
        description: Home directory recorded for the user.
        type: path
        required: true
      shell:
        description: Login shell.
        type: path
        default: /usr/sbin/nologin
      system:
        description: A system user (an id below 1000, no ageing); only for a user that does not exist yet.
        type: bool
        default: true
  directories:
    description: Directories to create (with their parents) or correct.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner; the directory's current owner when left out.
        type: str
      group:
        description: Group; the owner's group when O(directories[].owner) is given and this is not.
        type: str
      mode:
        description: Octal mode such as C("0750"); left as it is when left out.
        type: str
  files:
    description: Files with their content. After the action plugin, every entry has O(files[].content) or
      O(files[].content_base64).
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path; the directory must exist or be declared in O(directories).
        type: path
        required: true
      content:
        description: Text content.
        type: str
      content_base64:
        description: Binary content, base64-encoded.
        type: str
      src:
        description: A file on the controller (action plugin), or a directory whose whole tree is copied under
          O(files[].dest) with directories C(0755) and files C(0644), or C(0755) where the source is executable.
        type: str
      template:
        description: A Jinja template on the controller (action plugin).
        type: str
      vars:
        description: Extra variables for O(files[].template).
        type: dict
        default: {}
      secret:
        description: The content is never shown, in a diff or in the task's arguments.
        type: bool
        default: false
      owner:
        description: Owner; when left out, the user the module runs as (root on the hosts, where gymfleet's tasks
          become root; the controller's user for a file written on the controller).
        type: str
      group:
        description: Group; the owner's group when left out.
        type: str
      mode:
        description: Octal mode; C("0644") when left out (C("0600") for a secret).
        type: str
      validate:
        description:
          - A command that must accept the new content before it replaces O(files[].dest), with C(%s) standing for
            the candidate's path (a file beside the destination, with the same extension), as
            M(ansible.builtin.copy)'s O(ansible.builtin.copy#module:validate). When it exits non-zero the destination
            stays as it was and the task fails with the command's output in RV(rejected). Not run in check mode.
        type: str
  secret_files:
    description: Like O(files), with the content never logged; the action plugin moves the files that say
      O(files[].secret) here.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Secret files and binary content show only that they change.
"""

EXAMPLES = r"""
- name: Create Ray's user and lay out its home
  gymfleet.cluster.host_files:
    users:
      - {name: ray, home: /var/lib/ray}
    directories:
      - {path: /var/lib/ray, owner: ray, mode: "0750"}

- name: Lay out Redis' instances
  gymfleet.cluster.host_files:
    directories:
      - {path: /var/lib/redis/6379, owner: redis, mode: "0750"}
    files:
      - {dest: /etc/redis/redis-6379.conf, template: redis.conf.j2, vars: {item: {port: 6379}}, owner: redis,
         mode: "0640"}
      - {dest: /etc/redis/redis-6379.secrets.conf, template: redis-secrets.conf.j2, vars: {item: {port: 6379}},
         owner: redis, mode: "0640", secret: true}

- name: Write Envoy's config only if Envoy accepts it
  gymfleet.cluster.host_files:
    files:
      - {dest: /etc/gymfleet/envoy/envoy.yaml, content: "{{ config }}", validate: /usr/bin/envoy --mode validate -c %s}

- name: Copy a project from the controller
  gymfleet.cluster.host_files:
    files:
      - {src: /srv/echo_env/, dest: /opt/gymfleet/openenv/project}
"""

RETURN = r"""
installed:
  description: Packages installed (in check mode, that would be).
  returned: always
  type: list
  elements: str
users:
  description: Users created or corrected (in check mode, that would be).
  returned: always
  type: list
  elements: str
created:
  description: Directories created or corrected.
  returned: always
  type: list
  elements: str
written:
  description: Files written or corrected (in check mode, that would be).
  returned: always
  type: list
  elements: str
rejected:
  description: The file whose O(files[].validate) command refused the new content, and what it said.
  returned: failure, when a validate command refused
  type: dict
  contains:
    dest: {description: The file left as it was., type: str}
    rc: {description: The command's exit status., type: int}
    stdout: {description: Its output., type: str}
    stderr: {description: Its error output., type: str}
  sample: {dest: /etc/gymfleet/envoy/envoy.yaml, rc: 1, stdout: "", stderr: "error initializing configuration ..."}
"""

import base64
import grp
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
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


def main():
    module = AnsibleModule(
        argument_spec={
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
        },
        supports_check_mode=True,
    )
    params, check = module.params, module.check_mode
    installed, users, created, written, diffs = [], [], [], [], []
    try:
        missing = missing_packages(params["packages"], module.run_command)
        if missing and not check:
            install_packages(missing, module.run_command)
        installed = missing
        for item in params["users"]:
            if converge_user(item, check, module.run_command):
                users.append(item["name"])
        for item in params["directories"]:
            if converge_directory(item, check):
                created.append(item["path"])
        for secret, items in ((False, params["files"]), (True, params["secret_files"])):
            for item in items:
                changed, diff = converge_file(item, secret, check, module.run_command)
                if changed:
                    written.append(item["dest"])
                    if diff:
                        diffs.append(diff)
    except (LayoutError, PackageError, OSError) as exc:
        extra = {"rejected": exc.details} if isinstance(exc, Rejected) else {}
        module.fail_json(msg=str(exc), installed=installed, users=users, created=created, written=written, **extra)
    result = {"changed": bool(installed or users or created or written), "installed": installed, "users": users,
              "created": created, "written": written}
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
