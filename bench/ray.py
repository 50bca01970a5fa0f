"""Time a Ray cluster's deploy on a fresh lab: cold, with the packages already present, a rerun and a restart.

Usage: python bench/ray.py [--nodes N] [--keep]
Brings up its own lab (`gymfleet lab up --name raybench`): the first host is the head, the others workers.
Each row is one playbook run, whose last step waits until the head reports every node alive, so the wall
time is the time from the run's start to all nodes alive.
  cold      fresh hosts: the venv is created and ray[default] installed from the index, then the units start
  present   after a stop: the packages are there, the units start
  rerun     nothing to do: a second deploy changes nothing
  restart   stop every node, start the head, then the workers
Targets: a rerun changes nothing; with the packages present all nodes are alive within 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playbook_timer import timed_playbook

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB = "raybench"
TARGETS = {"present": 60.0, "rerun": None}


def overlay(inventory: Path, directory: Path) -> Path:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    listing = json.loads(subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
                                        capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout)
    hosts = sorted(listing["cluster"]["hosts"])
    path = directory / "ray.yml"
    path.write_text(json.dumps({"all": {
        # The lab's redis group holds 6379, the GCS's default; small object stores so all nodes fit on one machine.
        "vars": {"ray_gcs_port": 6479, "ray_object_store_memory": 100_000_000, "ray_num_cpus": 1},
        "children": {"ray_head": {"hosts": {hosts[0]: {}}}, "ray_worker": {"hosts": {h: {} for h in hosts[1:]}}}}}))
    return path


def run(playbook: str, inventories: list[Path]) -> tuple[float, int]:
    return timed_playbook(playbook, inventories, "always,firewall,ray")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    gymfleet = [str(BIN / "gymfleet"), "lab"]
    subprocess.run([*gymfleet, "down", "--name", LAB], capture_output=True, cwd=ROOT)
    subprocess.run([*gymfleet, "up", "--bare", "--name", LAB, "--nodes", str(args.nodes)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lab = ROOT / "inventories" / "lab" / LAB
            inventories = [lab, overlay(lab, Path(tmp))]
            print(f"{args.nodes} lab hosts: 1 head, {args.nodes - 1} workers; wall time until every node is alive")
            print(f"{'run':<10} {'wall s':>7} {'changed':>7}  target")
            for label, playbook in [("cold", "deploy"), ("stop", "stop"), ("present", "deploy"),
                                    ("rerun", "deploy"), ("restart", "restart")]:
                wall, changed = run(playbook, inventories)
                if label not in TARGETS:
                    verdict = "-"
                elif label == "rerun":
                    verdict = "ok (changed 0)" if changed == 0 else "MISSED"
                else:
                    verdict = f"ok (< {TARGETS[label]:.0f} s)" if wall <= TARGETS[label] else "MISSED"
                print(f"{label:<10} {wall:>7.2f} {changed:>7}  {verdict}", flush=True)
    finally:
        if not args.keep:
            subprocess.run([*gymfleet, "down", "--name", LAB], capture_output=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
