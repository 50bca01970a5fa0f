"""Time `make demo` cold and warm, and `gymfleet status` on the demo lab.

Usage: python bench/demo.py [--keep] [--status-runs N]
Uses its own lab (LAB=demobench), removed first so the cold run starts from nothing but the lab image.
  demo cold    lab up, stack laid out, the whole stack deployed on fresh hosts (packages from the index)
  demo warm    the same command again: nothing to start, nothing changes
  status       `gymfleet status --json` on the running demo lab (each run: the whole status playbook)
Targets: the warm demo changes nothing; status answers within 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB = "demobench"
TARGETS = {"status": 30.0}


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"}
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.monotonic() - started, proc


def changes(output: str) -> str:
    found = re.search(r"deploy: \w+ in [\d:]+; (\d+) tasks, (\d+) changes", output)
    return found.group(2) if found else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    parser.add_argument("--status-runs", type=int, default=3)
    args = parser.parse_args()
    subprocess.run([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], capture_output=True, cwd=ROOT)
    rows = []
    try:
        for label in ("demo cold", "demo warm"):
            # BARE=1: hosts from the bare image, so the cold run installs what a fresh machine would.
            seconds, proc = timed(["make", "--no-print-directory", "demo", f"LAB={LAB}", "BARE=1"])
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{label} failed")
            rows.append((label, seconds, changes(proc.stdout), ""))
        for run in range(1, args.status_runs + 1):
            seconds, proc = timed([str(BIN / "gymfleet"), "status", "--json", "-i", f"inventories/lab/{LAB}"])
            healthy = json.loads(proc.stdout)["healthy"] if proc.stdout.strip() else False
            target = TARGETS["status"]
            verdict = ("ok" if seconds < target else "MISSED") + f" (< {target:.0f} s)"
            rows.append((f"status {run}", seconds, "0", verdict + ("" if healthy else ", NOT healthy")))
    finally:
        if not args.keep:
            subprocess.run([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], capture_output=True, cwd=ROOT)
    print(f"| {'run':<12} | {'wall s':>7} | {'changed':>7} | target |")
    print(f"|{'-' * 14}|{'-' * 9}|{'-' * 9}|--------|")
    for label, seconds, changed, target in rows:
        print(f"| {label:<12} | {seconds:7.1f} | {changed:>7} | {target or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
