"""gymfleet.cluster.python_env: the record, the installer's command line, and real venvs on this machine."""

import os
import sys

from ansible_collections.gymfleet.cluster.plugins.module_utils import python_envs
from ansible_collections.gymfleet.cluster.plugins.modules import python_env

from .modhelper import run_module


def test_record_lists_the_pins_then_the_offline_wheels_sorted():
    assert python_envs.requirements_text("/opt/v", ["ray==2.60.0", "six"], None, ["b.whl"]) == (
        "# Managed by gymfleet: installed into /opt/v.\nray==2.60.0\nsix\n")
    assert python_envs.requirements_text("/opt/v", ["p==1"], "/var/cache/w", ["b.whl", "a.whl"]) == (
        "# Managed by gymfleet: installed into /opt/v.\np==1\n# installed offline from /var/cache/w:\n# a.whl b.whl\n")


def test_installer_command_line():
    params = {"path": "/opt/v", "kind": "venv", "installer": "auto", "wheelhouse": None, "install_args": ""}
    record = ["-r", "/opt/v/gymfleet-requirements.txt"]
    assert python_envs.install_argv(params, "/usr/local/bin/uv") == [
        "/usr/local/bin/uv", "pip", "install", "--compile-bytecode", "--python", "/opt/v/bin/python", *record]
    assert python_envs.install_argv(params, None) == [
        "/opt/v/bin/python", "-m", "pip", "install", "--disable-pip-version-check", *record]
    conda = {**params, "kind": "conda", "wheelhouse": "/w", "install_args": "--index-url 'https://m/simple'"}
    assert python_envs.install_argv(conda, "/usr/bin/uv") == [
        "/opt/v/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links",
        "/w", "--index-url", "https://m/simple", *record]
    assert python_envs.install_argv({**params, "installer": "pip"}, "/usr/bin/uv")[1:3] == ["-m", "pip"]
    # The same pins over changed wheels: both installers are told to reinstall, or they keep what they have.
    assert "--force-reinstall" in python_envs.install_argv(params, None, reinstall=True)
    assert "--reinstall" in python_envs.install_argv(params, "/usr/bin/uv", reinstall=True)


def _args(path, **extra):
    # This interpreter makes the venv: the machine's python3 may lack ensurepip, and no system package is asked for.
    return {"path": str(path), "python": sys.executable, "system_packages": [], "installer": "pip", **extra}


def test_creates_once_installs_on_a_change_and_checks_without_touching(tmp_path):
    env = tmp_path / "env"
    planned = run_module(python_env.main, {**_args(env), "_ansible_check_mode": True})
    assert planned["changed"] and planned["created"] and not planned["exists"] and not env.exists()

    first = run_module(python_env.main, _args(env))
    assert first["changed"] and first["created"] and first["exists"]
    assert os.access(env / "bin" / "python", os.X_OK)
    assert (env / "gymfleet-requirements.txt").read_text() == f"# Managed by gymfleet: installed into {env}.\n"

    again = run_module(python_env.main, _args(env))
    assert not again["changed"] and not again["installed"] and again["exists"]
    forced = run_module(python_env.main, {**_args(env), "force_install": True, "_ansible_diff": True})
    assert forced["changed"] and forced["installed"] and not forced["created"]


def test_a_failed_install_says_which_variable_and_leaves_no_record(tmp_path):
    env, wheels = tmp_path / "env", tmp_path / "wheels"
    wheels.mkdir()
    failed = run_module(python_env.main, _args(env, packages=["gymfleet-no-such-package==9.9"],
                                               wheelhouse=str(wheels)))
    assert failed["failed"] and failed["exists"] and not failed["installed"]
    assert "installing python_env_packages into" in failed["msg"] and "fix: check the pins" in failed["msg"]
    assert "gymfleet-no-such-package" in failed["msg"]
    assert not (env / "gymfleet-requirements.txt").exists()


def test_conda_without_its_executable_is_one_line(tmp_path):
    failed = run_module(python_env.main, _args(tmp_path / "env", kind="conda"))
    assert failed["failed"] and failed["msg"].startswith("python_env_kind is conda but python_env_conda_executable")
