"""Time OmniBoxes operations on a lab: deploy, an idempotent rerun, restart and flush_restart.

Usage: python bench/omniboxes.py [INVENTORY] [--instances N] [--max-parallel P]
(default INVENTORY: inventories/lab/gymfleet, as `make demo` leaves it). Every host of the lab's
`cluster` group becomes an OmniBoxes worker running the test double (tests/doubles/omniboxes) and the
first one is also the master (mode both). Each row is one playbook run: wall time until the master reports
every node healthy with full capacity, and the changed tasks. Targets: a rerun changes nothing and takes
under 15 s for the whole lab; restart and flush_restart reach full capacity within 60 s.
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
TARGETS = {"rerun": 15.0, "restart": 60.0, "flush_restart": 60.0}


def overlay(inventory: Path, instances: int, max_parallel: int, directory: Path) -> Path:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    listing = json.loads(subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout)
    hosts = sorted(listing["cluster"]["hosts"])
    path = directory / "omniboxes.yml"
    path.write_text(json.dumps({"all": {
        "vars": {"omniboxes_source": "path", "omniboxes_local_path": str(ROOT / "tests" / "doubles" / "omniboxes"),
                 "omniboxes_python_packages": ["redis>=4,<6"], "omniboxes_instances": instances,
                 "omniboxes_max_parallel": max_parallel,
                 # The lab's redis group already holds 6379.
                 "omniboxes_master_redis_port": 6479},
        "children": {"omniboxes_master": {"hosts": {hosts[0]: {}}},
                     "omniboxes_worker": {"hosts": {h: {} for h in hosts}}}}}))
    return path


def run(playbook: str, inventories: list[Path]) -> tuple[float, int]:
    return timed_playbook(playbook, inventories, "always,firewall,omniboxes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", nargs="?", default=str(ROOT / "inventories" / "lab" / "gymfleet"))
    parser.add_argument("--instances", type=int, default=20, help="instances per host")
    parser.add_argument("--max-parallel", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = Path(args.inventory)
        inventories = [lab, overlay(lab, args.instances, args.max_parallel, Path(tmp))]
        print(f"{args.instances} instances per host, {args.max_parallel} started at a time")
        print(f"{'run':<14} {'wall s':>7} {'changed':>7}  target")
        for label, playbook in [("deploy", "deploy"), ("rerun", "deploy"), ("restart", "restart"),
                                ("flush_restart", "flush_restart")]:
            wall, changed = run(playbook, inventories)
            target = TARGETS.get(label)
            if target is None:
                verdict = "-"
            elif wall <= target and (label != "rerun" or changed == 0):
                verdict = f"ok (< {target:.0f} s)"
            else:
                verdict = "MISSED"
            print(f"{label:<14} {wall:>7.2f} {changed:>7}  {verdict}")
        run("stop", inventories)
    return 0


if __name__ == "__main__":
    sys.exit(main())
