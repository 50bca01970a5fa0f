"""What the fault benches (faults*.py) share: reaching a lab's hosts, reading
its inventory, deploying part of it, and summing up runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def sh(command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, cwd=ROOT)


def in_host(host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    """A lab host is a container of this machine's Docker."""
    return sh(["docker", "exec", host, "sh", "-c", script], check=check)


def address_of(host: str) -> str:
    return in_host(host, "hostname -I").stdout.split()[0]


def _ansible(program: str, inventories: list[Path]) -> list[str]:
    args = [str(BIN / program)]
    for inventory in inventories:
        args += ["-i", str(inventory)]
    return args


def _env() -> dict:
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def inventory_listing(inventories: list[Path]) -> dict:
    """ansible-inventory --list of the lab."""
    done = subprocess.run([*_ansible("ansible-inventory", inventories), "--list"], capture_output=True, text=True,
                          env=_env(), cwd=ROOT, check=True)
    return json.loads(done.stdout)


def deploy(inventories: list[Path], tags: str, extra: dict | None = None) -> None:
    """The deploy playbook with these tags (and extra variables); exits with its output when it fails."""
    args = _ansible("ansible-playbook", inventories) + (["-e", json.dumps(extra)] if extra else [])
    proc = subprocess.run([*args, str(ROOT / "playbooks" / "deploy.yml"), "--tags", tags], capture_output=True,
                          text=True, env=_env(), cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"deploy failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")


def gymfleet(inventories: list[Path], *args: str) -> tuple[dict, float]:
    """A gymfleet command's --json document, and its seconds."""
    argv = [str(BIN / "gymfleet"), *args, "--json"]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    try:
        return json.loads(done.stdout), time.monotonic() - start
    except ValueError:
        sys.exit(f"gymfleet {' '.join(args)} printed no JSON (rc {done.returncode}): {done.stderr[-2000:]}")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def median(values: list[float | None]) -> float | None:
    """The median of the runs where it happened."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None
