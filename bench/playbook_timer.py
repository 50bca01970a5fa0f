"""Run one of gymfleet's playbooks against a lab and time it; shared by the benchmarks in this folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", re.M)


def timed_playbook(playbook: str, inventories: list[Path], tags: str) -> tuple[float, int]:
    """Wall seconds and changed tasks (summed over hosts) of playbooks/<playbook>.yml; exits when it fails."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    args = [str(BIN / "ansible-playbook")]
    for inventory in inventories:
        args += ["-i", str(inventory)]
    start = time.monotonic()
    proc = subprocess.run([*args, str(ROOT / "playbooks" / f"{playbook}.yml"), "--tags", tags],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{playbook} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, sum(int(changed) for _, changed in RECAP.findall(proc.stdout))
