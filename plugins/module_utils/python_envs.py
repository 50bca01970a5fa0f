"""A venv or conda environment with pinned requirements, installed only when they change (modules python_env and
services)."""

from __future__ import annotations

import json
import os
import shlex
import shutil

from ansible_collections.gymfleet.cluster.plugins.module_utils.debian_packages import (
    PackageError,
    install_packages,
    missing_packages,
)

ENVIRONMENT_OPTIONS = {
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
}
RECORD = "gymfleet-requirements.txt"


class EnvError(Exception):
    """An environment that could not be made or installed, with the variable and the fix in the message."""


def requirements_text(path: str, packages: list[str], wheelhouse: str | None, wheels: list[str]) -> str:
    """What the record holds: the pins, and where offline wheels came from."""
    lines = [f"# Managed by gymfleet: installed into {path}.", *packages]
    if wheelhouse:
        lines += [f"# installed offline from {wheelhouse}:", "# " + " ".join(sorted(wheels))]
    return "\n".join(lines) + "\n"


def install_argv(params: dict, uv: str | None, reinstall: bool = False) -> list[str]:
    """The installer's command line for the record at <path>/gymfleet-requirements.txt.

    reinstall: the pins are the same but their wheels changed, which an installer only sees when told."""
    python = os.path.join(params["path"], "bin", "python")
    use_uv = params["kind"] == "venv" and (params["installer"] == "uv" or (params["installer"] == "auto" and uv))
    # uv, unlike pip, leaves the bytecode to the first import, which a service running as a user that cannot write
    # the environment repeats at every start: compiled here, once.
    argv = [uv or "uv", "pip", "install", "--compile-bytecode", "--python", python] if use_uv \
        else [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if reinstall:
        argv.append("--reinstall" if use_uv else "--force-reinstall")
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


def install(params: dict, text: str, run, reinstall: bool = False) -> None:
    record = os.path.join(params["path"], RECORD)
    with open(record, "w") as handle:
        handle.write(text)
    if not params["packages"]:
        return
    rc, out, err = run(install_argv(params, shutil.which("uv"), reinstall))
    if rc != 0:
        os.remove(record)
        raise EnvError(f"installing python_env_packages into {params['path']} failed: {_last_line(out, err)}; "
                       "fix: check the pins in python_env_packages and that the host reaches the index or the "
                       "wheelhouse")


def give_to_owner(path: str, owner: str, run) -> None:
    rc, out, err = run(["chown", "-R", "--", f"{owner}:", path])
    if rc != 0:
        raise EnvError(f"giving {path} to {owner} failed: {_last_line(out, err)}; fix: check python_env_owner")


# Prints Python's version and each named distribution's (null when it is not installed) as one JSON object.
VERSIONS_SCRIPT = """
import json, sys, importlib.metadata as metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"python": sys.version.split()[0], **{name: version(name) for name in sys.argv[1:]}}))
"""


def installed_versions(python: str, names: list[str], run) -> dict:
    """Python's version and each distribution's, as the environment itself reports them."""
    rc, out, err = run([python, "-c", VERSIONS_SCRIPT, *names])
    if rc != 0:
        raise EnvError(f"{python} could not report its versions: {_last_line(out, err)}; fix: recreate the "
                       "environment (remove it and deploy again)")
    return json.loads(out)


def converge_environment(params: dict, check: bool, run) -> tuple[dict, dict | None]:
    """Create and install as needed: python_env's return values and the record's diff (None when unchanged).

    On failure raises EnvError (PackageError, OSError) with `partial` set to the return values so far."""
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
    result = {"path": params["path"], "created": created, "installed": installed, "exists": existed,
              "requirements": record, "python": python}
    diff = {"before": recorded or "", "after": text, "before_header": record, "after_header": record} \
        if installed else None
    if check or not installed:
        return result, diff
    try:
        if created:
            create(params, run)
        install(params, text, run, reinstall=not created and recorded == text)
        if params["owner"] != "root":
            give_to_owner(params["path"], params["owner"], run)
    except (EnvError, PackageError, OSError) as exc:
        exc.partial = {**result, "installed": False, "exists": os.access(python, os.X_OK)}
        raise
    result["exists"] = True
    return result, diff
