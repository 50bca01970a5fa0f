"""Issue 20's fault matrix, the hosts' rows: a lab host restarted, and a host lost in the middle of a deploy.

Usage: python bench/faults_hosts.py -i INVENTORY [--host HOST] [--runs N]
INVENTORY is a lab where gymfleet deployed something (such as a molecule scenario's, after converge); HOST, one
of its hosts (the last by default), is a container of this machine's Docker, as lab hosts are.

The faults:
  host restart      `docker restart` of the host: every process stops, systemd boots again, /run is empty
  lost mid-deploy   the host's power cut (`docker kill`) a few seconds into a `gymfleet restart`, which must
                    fail on it and say so without waiting for it; then the host booted again (`docker start`)
                    and a deploy run
(A frozen host, `docker pause`, is no model of a lost one here: Ansible's docker connection has no keepalive, so
a task running on it waits forever. Over SSH, ansible.cfg's ServerAliveInterval=15 gives up after 45 s.)
What follows each, as the operator sees it (`gymfleet status --json` asked every poll, a few seconds each):
  whole     seconds from the fault (from the end of the second deploy for a lost host) until status reports
            every component of every host up, with no gymfleet run in between for a restart
  drift     tasks that a check-mode deploy (`gymfleet deploy --check`) would then change on the host: rules,
            routes, files, units or processes that did not come back by themselves
  lost      components still DOWN at the deadline
For a lost host, also: the first deploy's seconds and what it said about the host; the second deploy's
seconds and its changes. Medians of --runs runs. Targets: a restarted host whole with no gymfleet run (nothing
DOWN, no drift); a lost host named in the failed deploy, and whole after the next one.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from faultlab import fmt, gymfleet, inventory_listing, median, sh

DEADLINE = 300.0
LOST_AFTER = 8.0


def down_rows(report: dict) -> list[str]:
    rows = [f"{row['host']} {row['component']}" for system in report["systems"].values()
            for row in system["components"] if row["state"] not in ("up", "done")]
    return rows + [f"{host} unreachable" for host in report["unreachable"]]


def wait_whole(inventories: list[Path], start: float) -> tuple[float | None, list[str]]:
    """Seconds from start until status reports everything up, and what is still down at the deadline."""
    down: list[str] = ["no answer yet"]
    while time.monotonic() - start < DEADLINE:
        report, _ = gymfleet(inventories, "status")
        down = down_rows(report)
        if report["healthy"] and not down:
            return time.monotonic() - start, []
        time.sleep(1)
    return None, down


def drift(inventories: list[Path], host: str) -> int:
    """Tasks a check-mode deploy would change on the host (-1 when it fails)."""
    result, _ = gymfleet(inventories, "deploy", "--check", "--limit", host)
    return result["hosts"].get(host, {}).get("changed", 0) if result["ok"] else -1


def restart(inventories: list[Path], host: str) -> dict:
    start = time.monotonic()
    sh(["docker", "restart", "--time", "30", host])
    whole, down = wait_whole(inventories, start)
    return {"whole": whole, "drift": drift(inventories, host), "lost": down}


def lost_mid_deploy(inventories: list[Path], host: str) -> dict:
    # The restart: every unit of the deploy runs its start path again, so the host is lost mid-change.
    timer = threading.Timer(LOST_AFTER, lambda: sh(["docker", "kill", host]))
    timer.start()
    try:
        first, first_seconds = gymfleet(inventories, "restart")
    finally:
        timer.cancel()
        sh(["docker", "start", host], check=False)
    said = [failure["message"][-150:] for failure in first["failures"] if failure["host"] == host]
    second, second_seconds = gymfleet(inventories, "deploy")
    whole, down = wait_whole(inventories, time.monotonic())
    return {"first ok": first["ok"], "first": first_seconds, "said": said[0] if said else "",
            "second ok": second["ok"], "second": second_seconds, "changed": second["changed"],
            "whole": whole, "drift": drift(inventories, host), "lost": down}


def table(results: dict, runs: int) -> str:
    lines = [f"Host faults on the lab, medians of {runs} runs (seconds)"]
    restarts = results.get("host restart", [])
    if restarts:
        worst_drift = max(run["drift"] for run in restarts)
        lost = sorted({row for run in restarts for row in run["lost"]})
        met = all(run["whole"] is not None for run in restarts) and worst_drift == 0
        lines.append(f"host restart: whole after {fmt(median([r['whole'] for r in restarts]))} s with no gymfleet "
                     f"run, drift {worst_drift}, lost {', '.join(lost) or 'nothing'}: {'ok' if met else 'MISSED'}")
    lost_runs = results.get("lost mid-deploy", [])
    if lost_runs:
        named = all(not run["first ok"] and run["said"] for run in lost_runs)
        met = named and all(run["second ok"] and run["whole"] is not None and run["drift"] == 0 for run in lost_runs)
        lines.append(f"lost mid-deploy: the deploy failed in {fmt(median([r['first'] for r in lost_runs]))} s, "
                     f"saying {lost_runs[0]['said']!r}; the next one took "
                     f"{fmt(median([r['second'] for r in lost_runs]))} s ({lost_runs[0]['changed']} changes), "
                     f"whole after {fmt(median([r['whole'] for r in lost_runs]))} s more, drift "
                     f"{max(r['drift'] for r in lost_runs)}: {'ok' if met else 'MISSED'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-i", "--inventory", action="append", type=Path, required=True,
                        help="a lab where gymfleet deployed something")
    parser.add_argument("--host", help="the host to fault (default: the inventory's last)")
    parser.add_argument("--only", choices=["host restart", "lost mid-deploy"], action="append")
    args = parser.parse_args()
    host = args.host or sorted(inventory_listing(args.inventory)["_meta"]["hostvars"])[-1]
    whole, down = wait_whole(args.inventory, time.monotonic())
    if whole is None:
        sys.exit(f"the lab is not whole before any fault: {', '.join(down)}")
    results: dict = {}
    for fault, run_fault in (("host restart", restart), ("lost mid-deploy", lost_mid_deploy)):
        if args.only and fault not in args.only:
            continue
        for _ in range(args.runs):
            run = run_fault(args.inventory, host)
            results.setdefault(fault, []).append(run)
            print(f"  {fault:<16} {json.dumps(run)}", file=sys.stderr, flush=True)
    print(table(results, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
