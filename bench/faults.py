"""Issue 20's fault matrix, Ray's rows: each fault induced on the real processes of a lab, and what follows.

Usage: python bench/faults.py [--runs N] [--nodes N] [--keep] [-i INVENTORY ...] [--only FAULT] [--no-floor]
Without -i, brings up its own lab (`gymfleet lab up --name faultbench`) and deploys Ray on it (the first host is
the head); with -i, uses a lab where Ray is deployed already (such as molecule ray's, after converge).

Every fault is run against two settings of the same cluster, side by side:
  gymfleet  as deployed: workers ask the head every ray_worker_liveness_check_interval (2 s) whether it still
            counts them alive, which is how a worker of a restarted head learns to start again and rejoin
  floor     Ray's own behaviour, what a hand-run `ray start` gives: every 60 s
            (RAY_raylet_liveness_self_check_interval_ms)
The faults:
  head restart     systemctl restart of the head's unit
  head kill -9     SIGKILL to every process of the head's unit (systemd starts it again)
  worker kill -9   SIGKILL to every process of a worker's unit
  worker cut 30 s  every packet between a worker and the head dropped for 30 s (iptables in the worker), healed
From the fault, the head's dashboard is polled every 0.25 s from the head (the state API, with the cluster's token):
  detect   the first answer that misses a node (or no answer): what `gymfleet status` would show
  recover  the first answer, after that, with every node alive again
  lost     nodes not alive RECOVER_DEADLINE s after the fault
Medians of --runs runs. Targets: nothing lost in any row; after a head restart, workers back within 15 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faultlab import BIN, ROOT, address_of, deploy, fmt, in_host, inventory_listing, median, sh

LAB = "faultbench"
POLL = 0.25
RECOVER_DEADLINE = 150.0
CUT_SECONDS = 30
FLOOR_ENV = {"RAY_raylet_liveness_self_check_interval_ms": "60000"}
TARGETS = {"head restart": 15.0}


def inventory_hosts(inventories: list[Path]) -> tuple[str, list[str], dict]:
    listing = inventory_listing(inventories)
    head = listing["ray_head"]["hosts"][0]
    workers = sorted(listing["ray_worker"]["hosts"])
    return head, workers, listing["_meta"]["hostvars"]


class Dashboard:
    """The head's state API, asked from the head itself (the firewall keeps its port to the cluster's members), as
    `gymfleet status` asks it. One process in the head answers every question: a `docker exec` and a Python
    start four times a second took CPU from the restart being timed on 2 cores."""

    SERVER = ("import json, sys, urllib.request\n"
              "token = open('/etc/gymfleet/ray/auth_token').read().strip()\n"
              "request = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + token})\n"
              "for _ in sys.stdin:\n"
              "    try:\n"
              "        rows = json.load(urllib.request.urlopen(request, timeout=2))['data']['result']['result']\n"
              "        print(sum(row.get('state') == 'ALIVE' for row in rows), flush=True)\n"
              "    except Exception:\n"
              "        print('-', flush=True)\n")

    def __init__(self, head: str):
        url = f"http://{address_of(head)}:8265/api/v0/nodes?detail=1&limit=10000"
        self.process = subprocess.Popen(["docker", "exec", "-i", head, "python3", "-c", self.SERVER, url],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def alive(self) -> int | None:
        """How many nodes are alive (a restarted worker is a new node beside its dead self), or None when the head
        does not answer."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            sys.exit("the dashboard poller in the head ended")
        return int(answer) if answer.isdigit() else None

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def wait_whole(dashboard: Dashboard, everyone: int, timeout: float = RECOVER_DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while dashboard.alive() != everyone:
        if time.monotonic() > deadline:
            sys.exit(f"the cluster is not whole after {timeout:.0f} s: {dashboard.alive()} of {everyone}")
        time.sleep(1)


def observe(dashboard: Dashboard, everyone: int, start: float, heal_at: float | None = None,
            heal=None) -> tuple[float | None, float | None, int]:
    """detect, recover (seconds from start; None when it never happened) and the nodes lost at the deadline."""
    detected = recovered = None
    alive: int | None = 0
    while time.monotonic() - start < RECOVER_DEADLINE:
        if heal and heal_at is not None and time.monotonic() - start >= heal_at:
            heal()
            heal = None
        alive = dashboard.alive()
        now = time.monotonic() - start
        if detected is None and alive != everyone:
            detected = now
        elif detected is not None and alive == everyone:
            recovered = now
            break
        elif detected is None and heal is None and now > (heal_at or 0) + 20:
            break  # the fault never showed (a cut shorter than Ray's own health check) and is healed
        time.sleep(POLL)
    return detected, recovered, max(everyone - (alive or 0), 0)


def faults(head: str, worker: str, head_address: str) -> dict:
    """Each fault: how to induce it, and (for a cut) when and how to heal it."""
    cut = (f"iptables -I INPUT -s {head_address} -j DROP && iptables -I OUTPUT -d {head_address} -j DROP")
    uncut = (f"iptables -D INPUT -s {head_address} -j DROP; iptables -D OUTPUT -d {head_address} -j DROP")
    return {
        "head restart": (lambda: in_host(head, "systemctl restart ray-head"), None, None),
        "head kill -9": (lambda: in_host(head, "systemctl kill --signal=KILL ray-head"), None, None),
        "worker kill -9": (lambda: in_host(worker, "systemctl kill --signal=KILL ray-worker"), None, None),
        f"worker cut {CUT_SECONDS} s": (lambda: in_host(worker, cut), CUT_SECONDS,
                                        lambda: in_host(worker, uncut, check=False)),
    }


def own_lab(nodes: int, directory: Path) -> list[Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ray import overlay  # bench/ray.py: head on the first host, small object stores

    sh([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], check=False)
    sh([str(BIN / "gymfleet"), "lab", "up", "--name", LAB, "--nodes", str(nodes)])
    lab = ROOT / "inventories" / "lab" / LAB
    return [lab, overlay(lab, directory)]


def measure(label: str, inventories: list[Path], runs: int, floor_env: dict | None, only: list[str]) -> dict:
    """{fault: [(detect, recover, lost), ...]} with the cluster deployed as this setting wants (only these faults,
    when given)."""
    deploy(inventories, "always,firewall,ray", {"ray_environment": floor_env} if floor_env else None)
    head, workers, _ = inventory_hosts(inventories)
    dashboard = Dashboard(head)
    everyone = 1 + len(workers)
    results: dict = {}
    try:
        for fault, (induce, heal_at, heal) in faults(head, workers[-1], address_of(head)).items():
            if only and fault not in only:
                continue
            for _ in range(runs):
                wait_whole(dashboard, everyone)
                time.sleep(2)
                start = time.monotonic()
                induce()
                results.setdefault(fault, []).append(observe(dashboard, everyone, start, heal_at, heal))
                print(f"  {label:<9} {fault:<16} {format_run(results[fault][-1])}", file=sys.stderr, flush=True)
    finally:
        dashboard.close()
    return results


def format_run(run: tuple) -> str:
    detect, recover, lost = run
    return f"detect {fmt(detect)} recover {fmt(recover)} lost {lost}"


def table(ours: dict, floor: dict, runs: int) -> str:
    """A run is whole when nothing was lost and the cluster came back, or the fault never showed (a cut shorter
    than Ray's own health checks); detect and recover are medians over the runs where the fault showed."""
    lines = [f"Ray faults on the lab, medians of {runs} runs (seconds from the fault; seen: runs where it showed)",
             f"{'fault':<18} {'seen':>4} {'detect':>7} {'recover':>8} {'lost':>5} {'floor recover':>14} {'ratio':>6}"
             "  target"]
    for fault, measured in ours.items():
        seen = [m for m in measured if m[0] is not None]
        detect, recover = median([m[0] for m in seen]), median([m[1] for m in seen])
        lost = max(m[2] for m in measured)
        floor_recover = median([m[1] for m in floor.get(fault, []) if m[0] is not None])
        ratio = f"{recover / floor_recover:.2f}" if recover and floor_recover else "-"
        whole = all(m[2] == 0 and (m[0] is None or m[1] is not None) for m in measured)
        target = TARGETS.get(fault)
        if target is None:
            verdict = "ok (nothing lost)" if whole else "MISSED (lost or not back)"
        else:
            verdict = (f"ok (<= {target:.0f} s, nothing lost)" if whole and recover is not None and recover <= target
                       else f"MISSED (<= {target:.0f} s, nothing lost)")
        lines.append(f"{fault:<18} {len(seen):>2}/{len(measured)} {fmt(detect):>7} {fmt(recover):>8} {lost:>5} "
                     f"{fmt(floor_recover):>14} {ratio:>6}  {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the lab up (without -i)")
    parser.add_argument("-i", "--inventory", action="append", type=Path, help="a lab where Ray is deployed")
    parser.add_argument("--only", action="append", help="only this fault (repeatable), such as 'head restart'")
    parser.add_argument("--no-floor", action="store_true", help="leave out the floor's runs (no ratio then)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inventories = args.inventory or own_lab(args.nodes, Path(tmp))
        try:
            floor = {} if args.no_floor else measure("floor", inventories, args.runs, FLOOR_ENV, args.only)
            ours = measure("gymfleet", inventories, args.runs, None, args.only)
            print(table(ours, floor, args.runs))
        finally:
            if not args.inventory and not args.keep:
                sh([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
