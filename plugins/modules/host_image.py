#!/usr/bin/python
"""Build a Docker image from programs already installed on the host, for hosts that reach no registry."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_image
short_description: Build a Docker image from what the host already runs, with the libraries it loads
version_added: 0.1.0
author: gymfleet developers
description:
  - Imports (C(docker import)) a root filesystem made of O(paths), of a Python interpreter with its standard library
    and its environment (O(python)), of every shared library that the ELF files among them load (as C(ldd) lists
    them, the dynamic loader included), of the loader's cache C(/etc/ld.so.cache) and of an empty C(/tmp).
  - Everything keeps its path, so a program runs in the container as it runs on the host; a symbolic link in a path
    (such as Debian's C(/lib) to C(usr/lib)) is kept as a link.
  - The tag is a digest of the content (paths, modes, link targets and the bytes of every file), so the same files
    give the same image and nothing is imported; a changed file gives a new tag, which is how a service that runs
    the image learns that it changed.
  - Older tags of O(name) that this module built (label C(gymfleet.built-by=host_image)) are removed, except those
    a container still uses; images of O(name) built by anyone else are never touched.
options:
  name:
    description: The image's repository, such as C(gymfleet/parameter-server); the tag is the content's digest.
    type: str
    required: true
  paths:
    description: Files and directories to put in the image (directories with everything under them).
    type: list
    elements: path
    default: []
  python:
    description:
      - A Python interpreter (such as a virtual environment's C(bin/python)) to put in the image with its standard
        library and, for a virtual environment, the environment itself.
    type: path
  exclude:
    description: Glob patterns of paths to leave out (matched against the whole path), such as C(*/__pycache__).
    type: list
    elements: str
    default: []
  labels:
    description: Labels of the image, beside C(gymfleet.built-by=host_image).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description:
      - Computes the digest and reports whether an image would be imported, without importing or removing.
      - When C(docker) or a path is missing (an engine or an environment the same run would install), reports a
        change and the tag C(pending).
  diff_mode:
    support: full
    description: The tags of O(name) before and after.
requirements:
  - A running Docker engine and its C(docker) command; C(ldd) (glibc's).
"""

EXAMPLES = r"""
---
- name: Build the job's image from the host's MXNet environment and the job's programs
  gymfleet.cluster.host_image:
    name: gymfleet/parameter-server
    python: /opt/gymfleet/parameter_server/venv/bin/python
    exclude: ["*/__pycache__"]
  register: job_image

- name: Run it
  ansible.builtin.command:
    argv: [docker, run, --rm, "{{ job_image.image }}", /opt/gymfleet/parameter_server/venv/bin/python, -c, import mxnet]
  changed_when: false
"""

RETURN = r"""
image:
  description: The image's reference, C(name:tag).
  returned: always
  type: str
  sample: gymfleet/parameter-server:3f2a9c81d07e
tag:
  description: The first 12 hexadecimal digits of the content's digest.
  returned: always
  type: str
files:
  description: How many entries (files, links and directories) the image holds.
  returned: always
  type: int
size:
  description: The bytes of the regular files in it.
  returned: always
  type: int
removed:
  description: Older tags of O(name) built by this module that were removed (or would be, in check mode).
  returned: always
  type: list
  elements: str
kept:
  description: Older tags that a container still uses, left in place.
  returned: always
  type: list
  elements: str
"""

import contextlib
import fnmatch
import hashlib
import json
import os
import stat
import subprocess
import tarfile

from ansible.module_utils.basic import AnsibleModule

BUILT_BY = "gymfleet.built-by=host_image"
ELF_MAGIC = b"\x7fELF"
# Where the interpreter reports what it needs: its environment, and the standard library of the base interpreter.
PYTHON_PATHS = ("import json, sys, sysconfig; print(json.dumps({'prefix': sys.prefix, 'base_prefix': sys.base_prefix,"
                " 'stdlib': sysconfig.get_path('stdlib'), 'platstdlib': sysconfig.get_path('platstdlib')}))")


class RootFilesystem:
    """The entries of the image, by their canonical path (no symbolic link among its directories)."""

    def __init__(self, exclude: list[str]):
        self.exclude = exclude
        self.entries: dict[str, os.stat_result] = {}
        self.links: dict[str, str] = {}
        self.walked: set[str] = set()

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in self.exclude)

    def directory(self, path: str) -> str:
        """The canonical form of a directory, recording each directory and symbolic link met on the way (a link
        as a link: what it points to is only walked through, never added whole)."""
        current = "/"
        for part in [p for p in path.split("/") if p]:
            candidate = os.path.join(current, part)
            self.record(candidate, walk=False)
            if os.path.islink(candidate):
                current = self.directory(os.path.normpath(os.path.join(current, os.readlink(candidate))))
            else:
                current = candidate
        return current

    def add(self, path: str) -> None:
        """A path and, for a directory, everything under it; for a link, what it points to."""
        parent, name = os.path.split(os.path.normpath(path))
        canonical = os.path.join(self.directory(parent), name)
        if not self.excluded(canonical):
            self.record(canonical)

    def record(self, path: str, walk: bool = True) -> None:
        if path == "/":
            return
        if path not in self.entries:
            info = os.lstat(path)
            if not (stat.S_ISLNK(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                return  # sockets, devices and pipes have no place in an image
            self.entries[path] = info
            if stat.S_ISLNK(info.st_mode):
                self.links[path] = os.readlink(path)
        info = self.entries[path]
        if not walk or path in self.walked:
            return
        self.walked.add(path)
        if stat.S_ISLNK(info.st_mode):
            self.add(os.path.join(os.path.dirname(path), self.links[path]))
        elif stat.S_ISDIR(info.st_mode):
            for child in sorted(os.listdir(path)):
                self.add(os.path.join(path, child))

    def elf_files(self) -> list[str]:
        found = []
        for path, info in self.entries.items():
            if stat.S_ISREG(info.st_mode) and info.st_size > 4:
                with open(path, "rb") as handle:
                    if handle.read(4) == ELF_MAGIC:
                        found.append(path)
        return found

    def digest(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.entries):
            info = self.entries[path]
            digest.update(f"{path}\0{stat.S_IMODE(info.st_mode):o}\0{stat.S_IFMT(info.st_mode)}\0"
                          f"{self.links.get(path, '')}\0".encode())
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
        return digest.hexdigest()

    def write(self, stream) -> None:
        """The entries as a tar stream, parents before children, owners and modes as on the host."""
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for path in sorted(self.entries):
                info = self.entries[path]
                entry = tarfile.TarInfo(path.lstrip("/"))
                entry.mode, entry.uid, entry.gid = stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
                entry.mtime = int(info.st_mtime)
                if stat.S_ISLNK(info.st_mode):
                    entry.type, entry.linkname = tarfile.SYMTYPE, self.links[path]
                    archive.addfile(entry)
                elif stat.S_ISDIR(info.st_mode):
                    entry.type = tarfile.DIRTYPE
                    archive.addfile(entry)
                else:
                    entry.size = info.st_size
                    with open(path, "rb") as handle:
                        archive.addfile(entry, handle)
            if "/tmp" not in self.entries:
                tmp = tarfile.TarInfo("tmp")
                tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
                archive.addfile(tmp)


def loaded_libraries(module: AnsibleModule, files: list[str]) -> set[str]:
    """Every library (and loader) that ldd says these ELF files load; static files and plain data are skipped."""
    libraries = set()
    for start in range(0, len(files), 200):
        # ldd exits non-zero when one of them is not dynamic; what it printed for the others still counts.
        _, out, _ = module.run_command(["ldd", *files[start:start + 200]], environ_update={"LC_ALL": "C"})
        for line in out.splitlines():
            words = line.split()
            if "=>" in words and len(words) > words.index("=>") + 1:
                candidate = words[words.index("=>") + 1]
            elif words and words[0].startswith("/") and len(words) > 1 and words[1].startswith("(0x"):
                candidate = words[0]
            else:
                continue
            if candidate.startswith("/"):
                libraries.add(candidate)
    return libraries


def python_paths(module: AnsibleModule, python: str) -> list[str]:
    rc, out, err = module.run_command([python, "-c", PYTHON_PATHS])
    if rc != 0:
        module.fail_json(msg=f"python {python} cannot run ({err.strip() or rc}); fix: install it, or correct the path")
    found = json.loads(out)
    paths = [python, found["stdlib"], found["platstdlib"]]
    return paths + ([found["prefix"]] if found["prefix"] != found["base_prefix"] else [])


def docker(module: AnsibleModule, *args: str, check: bool = True) -> str:
    rc, out, err = module.run_command(["docker", *args])
    if rc != 0 and check:
        module.fail_json(msg=f"docker {' '.join(args[:2])} failed: {err.strip() or out.strip()}")
    return out if rc == 0 else ""


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "paths": {"type": "list", "elements": "path", "default": []},
            "python": {"type": "path"},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "labels": {"type": "dict", "default": {}},
        },
        required_one_of=[("paths", "python")],
        supports_check_mode=True,
    )
    name = module.params["name"]
    python = module.params["python"]
    # What the same run would install first (the engine, an environment) is not there in check mode: an image would
    # be built.
    missing = [path for path in [*module.params["paths"], *([python] if python else [])] if not os.path.lexists(path)]
    if not module.get_bin_path("docker"):
        missing.insert(0, "docker")
    if missing and module.check_mode:
        module.exit_json(changed=True, image=f"{name}:pending", tag="pending", files=0, size=0, removed=[], kept=[],
                         msg=f"{', '.join(missing)}: not on this host yet")
    if "docker" in missing:
        module.fail_json(msg="docker is not installed; fix: install a Docker engine (docker_bridge_install_engine)")
    paths = list(module.params["paths"])
    if python:
        paths += python_paths(module, python)
    missing = [path for path in paths if not os.path.lexists(path)]
    if missing:
        module.fail_json(msg=f"{', '.join(missing)}: not on this host; fix: install it first, or leave it out of paths")

    root = RootFilesystem(module.params["exclude"])
    for path in paths:
        root.add(path)
    for library in sorted(loaded_libraries(module, root.elf_files())):
        root.add(library)
    if os.path.exists("/etc/ld.so.cache"):
        root.add("/etc/ld.so.cache")

    tag = root.digest()[:12]
    image = f"{name}:{tag}"
    before = docker(module, "image", "ls", "--filter", f"reference={name}", "--format",
                    "{{.Repository}}:{{.Tag}}").split()
    ours = docker(module, "image", "ls", "--filter", f"reference={name}", "--filter", f"label={BUILT_BY}",
                  "--format", "{{.Repository}}:{{.Tag}}").split()
    changed = image not in before
    if changed and not module.check_mode:
        changes = [f"LABEL {label}" for label in
                   [BUILT_BY, *(f"{key}={value}" for key, value in sorted(module.params["labels"].items()))]]
        command = ["docker", "import", *[word for change in changes for word in ("--change", change)], "-", image]
        with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            with contextlib.suppress(BrokenPipeError):  # docker import ended early; its own message says why
                root.write(proc.stdin)
            proc.stdin.close()
            err = proc.stderr.read().decode()
            if proc.wait() != 0:
                module.fail_json(msg=f"docker import of {image} failed: {err.strip()}")

    in_use = set(docker(module, "ps", "-a", "--format", "{{.Image}}").split())
    older = [ref for ref in ours if ref != image]
    removed, kept = [ref for ref in older if ref not in in_use], [ref for ref in older if ref in in_use]
    if not module.check_mode:
        for ref in removed:
            docker(module, "image", "rm", ref, check=False)
    sizes = sum(info.st_size for info in root.entries.values() if stat.S_ISREG(info.st_mode))
    after = sorted({*before, image} - set(removed))
    module.exit_json(changed=changed or bool(removed), image=image, tag=tag, files=len(root.entries), size=sizes,
                     removed=removed, kept=kept,
                     diff={"before": "\n".join(sorted(before)) + "\n", "after": "\n".join(after) + "\n"})


if __name__ == "__main__":
    main()
