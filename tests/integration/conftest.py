"""A two-node lab shared by the integration tests, created once per session and removed after."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LAB = "itest"


def gymfleet(*args, env=None, check=False):
    proc = subprocess.run([str(VENV_BIN / "gymfleet"), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"gymfleet {' '.join(args)} failed: {proc.stderr}")
    return proc


def ansible_env(**extra):
    env = os.environ.copy()
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=f"{VENV_BIN}:{env['PATH']}")
    env.update(extra)
    return env


def playbook(playbook_path, inventory, *args, env=None, cwd=ROOT):
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *args],
                          capture_output=True, text=True, cwd=cwd, env=env or ansible_env())


def lab_containers(name):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=gymfleet.lab={name}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="session")
def lab():
    """Inventory directory of a fresh two-node lab."""
    if lab_containers(LAB):
        gymfleet("lab", "down", "--name", LAB)
    gymfleet("lab", "up", "--name", LAB, "--nodes", "2", check=True)
    yield ROOT / "inventories" / "lab" / LAB
    gymfleet("lab", "down", "--name", LAB)
