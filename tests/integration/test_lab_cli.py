import os
import subprocess

import pytest

from conftest import LAB, ROOT, VENV_BIN, ansible_env, gymfleet, lab_containers
from gymfleet.errors import GymfleetError
from gymfleet.lab import hosts


def one_line_error(proc):
    lines = proc.stderr.strip().splitlines()
    return proc.returncode != 0 and len(lines) == 1 and "fix:" in lines[0]


@pytest.mark.parametrize(
    "args",
    [["lab", "up", "--nodes", "0", "--name", "bad-n"], ["lab", "up", "--name", "Bad_Name"],
     ["lab", "frob"], ["lab", "down", "--name", "no-such-lab"]],
)
def test_bad_input_is_one_line_and_creates_nothing(args):
    proc = gymfleet(*args)
    assert one_line_error(proc), proc.stderr
    assert lab_containers("bad-n") == [] and lab_containers("Bad_Name") == []


def test_no_engine_and_none_installable():
    env = dict(os.environ, PATH="/nonexistent")  # no docker, dockerd or apt-get to be found
    proc = subprocess.run([str(VENV_BIN / "python"), "-m", "gymfleet.cli", "lab", "up", "--name", "noengine"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert one_line_error(proc), proc.stderr
    assert "no Docker engine answers" in proc.stderr


def test_failed_up_leaves_nothing_behind(tmp_path):
    with pytest.raises(GymfleetError):
        hosts.up("halfmade", 2, "ssh", "gymfleet-lab:does-not-exist", tmp_path, tmp_path / "keys", print)
    assert lab_containers("halfmade") == []
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", "name=gymfleet-halfmade"],
                              capture_output=True, text=True, check=True).stdout
    assert networks.strip() == ""
    assert not (tmp_path / "halfmade").exists()


def test_existing_lab(lab):
    proc = gymfleet("lab", "up", "--name", LAB, "--nodes", "2")
    assert one_line_error(proc) and "already exists" in proc.stderr
    resumed = gymfleet("lab", "up", "--name", LAB, "--exist-ok")
    assert resumed.returncode == 0 and "hosts running" in resumed.stdout
    status = gymfleet("lab", "status", check=True).stdout
    assert f"lab {LAB}" in status and f"{LAB}-node2" in status


@pytest.mark.parametrize("connection", ["ssh", "docker", "paramiko"])
def test_every_connection_reaches_every_host(lab, connection):
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "-i", str(lab), "all", "-e", f"gymfleet_lab_connection={connection}",
         "-m", "ansible.builtin.command", "-a", "systemctl is-system-running"],
        capture_output=True, text=True, env=ansible_env(), cwd=ROOT)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr  # degraded exits 1 but still answers
    for node in (f"{LAB}-node1", f"{LAB}-node2"):
        assert f"{node} | " in proc.stdout and "UNREACHABLE" not in proc.stdout
