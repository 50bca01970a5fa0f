"""Time the python_env role on a lab: a first run, then reruns that must change nothing.

Usage: python bench/python_env_rerun.py [INVENTORY] [--runs N]
(default INVENTORY: inventories/lab/gymfleet, as `make demo` leaves it). Prints one row per run:
wall time, changed tasks, and the role's own task time per host from ansible.posix.profile_tasks.
The target for a rerun is under one second of role work per host.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK_TIME = re.compile(r"^gymfleet\.cluster\.python_env : .*?-+ (\d+\.\d+)s$", re.M)
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", re.M)


def run_once(inventory: Path) -> tuple[float, int, int, float]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="100")
    start = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                           str(ROOT / "bench" / "python_env.yml")], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"python_env failed:\n{proc.stdout[-3000:]}")
    recap = RECAP.findall(proc.stdout)
    # profile_tasks times a task across all hosts, which run it in parallel: the sum is each host's share.
    role_seconds = sum(float(t) for t in TASK_TIME.findall(proc.stdout))
    return wall, len(recap), sum(int(c) for _, c in recap), role_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", nargs="?", default=str(ROOT / "inventories" / "lab" / "gymfleet"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'run':<8} {'wall s':>7} {'hosts':>5} {'changed':>7} {'role s/host':>11}  target")
    for index in range(args.runs):
        wall, hosts, changed, role = run_once(Path(args.inventory))
        label = "first" if index == 0 else f"rerun {index}"
        verdict = "-" if index == 0 else ("ok (< 1 s)" if role < 1 and changed == 0 else "MISSED")
        print(f"{label:<8} {wall:>7.2f} {hosts:>5} {changed:>7} {role:>11.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
