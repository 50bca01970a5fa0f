"""Issue 20's fault matrix, OmniBoxes' rows: each fault induced on the real processes of a lab, and what the master
and the pools show until it is whole again.

Usage: python bench/faults_omniboxes.py -i INVENTORY [--runs N]
INVENTORY is a lab where OmniBoxes is deployed (such as molecule omniboxes's, after converge: the master on the
host of omniboxes_master, workers on omniboxes_worker with their omniboxes_instances).

The faults, on the last worker (the master's own host for the master and its registry):
  node kill -9        SIGKILL to the node server's processes (systemd starts it after omniboxes_restart_sec)
  instance kill -9    SIGKILL to one instance server
  master kill -9      SIGKILL to the master API
  master restart      systemctl restart of the master API
  registry restart    systemctl restart of the master's registry Redis
  registry kill -9    SIGKILL to the registry Redis
  pool Redis kill -9  SIGKILL to the worker's pool Redis (its pool lives in memory); omniboxes-pool adds the
                      instance servers' ports back
  ..., upstream alone the same with omniboxes-pool stopped: the floor, upstream's servers on their own
Polled every 0.5 s from the fault, as a user of the master sees it and as the worker's pool holds it:
  detect    the master's /info first differs from the whole cluster (healthy nodes, capacity), or the pool misses
            a port or holds one whose instance server does not answer /info
  recover   the first poll after that with the master whole and every pool complete again
  pool      seconds until the worker's pool holds every instance port again, each answering
  dead      seconds (in polls) the pool held a port whose instance server did not answer: a lease of it fails
  lost      what is still missing at the deadline: nodes, capacity, pool ports
The master reads its registry and asks its nodes every 10 s (upstream's period), so what it shows lags by up to
that much. Medians of --runs runs. Targets: nothing lost; a pool complete <= 5 s after its Redis dies; a killed node
seen <= 15 s after the kill; the master whole <= 40 s after its restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from faultlab import fmt, in_host, inventory_listing, median

POLL = 0.5
DEADLINE = 120.0
# fault -> (column, seconds). The node kill's and the master restart's were bounds in molecule omniboxes' verify,
# which now waits on the state alone: the master stops calling a killed node healthy within one health period
# (10 s) plus 5 s of asking, and is whole again within 40 s of its restart.
TARGETS = {"pool Redis kill -9": ("pool", 5.0), "node kill -9": ("detect", 15.0), "master restart": ("recover", 40.0)}


def lab(inventories: list[Path]) -> tuple[str, list[str], dict]:
    listing = inventory_listing(inventories)
    return (listing["omniboxes_master"]["hosts"][0], sorted(listing["omniboxes_worker"]["hosts"]),
            listing["_meta"]["hostvars"])


class Cluster:
    """The master's /info (asked on its host, as its users' clients do) and a worker's pool in its Redis."""

    def __init__(self, master: str, workers: list[str], hostvars: dict):
        self.master, self.workers = master, workers
        self.instances = {w: int(hostvars[w].get("omniboxes_instances", 1)) for w in workers}

    def master_view(self) -> tuple[int, int] | None:
        """(healthy nodes, their capacity), None when the master does not answer."""
        done = in_host(self.master, "curl -s --max-time 2 -H 'x-api-key: default_key' http://127.0.0.1:7000/info",
                       check=False)
        try:
            nodes = json.loads(done.stdout)["nodes"] or []
        except (ValueError, KeyError, TypeError):
            return None
        healthy = [node for node in nodes if node.get("healthy")]
        return len(healthy), sum(int(node.get("capacity", 0)) for node in healthy)

    # The ports in the worker's pool (available, and leased as host:port), each with its instance server's answer.
    POOL = ("for port in $(redis-cli -p 6380 SMEMBERS available) $(redis-cli -p 6380 SMEMBERS in_use | sed 's/.*://');"
            " do echo $port $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'x-api-key: default_key'"
            " http://127.0.0.1:$port/info); done")

    def pool(self, worker: str) -> tuple[int | None, int]:
        """Ports in the worker's pool (available and leased) whose instance server answers, None when its Redis
        does not answer; and those whose server does not: a dead one would be handed out and fail its client."""
        if in_host(worker, "redis-cli -p 6380 PING", check=False).stdout.strip() != "PONG":
            return None, 0
        answers = [line.split()[1:] for line in in_host(worker, self.POOL, check=False).stdout.splitlines() if line]
        return sum(1 for answer in answers if answer == ["200"]), sum(1 for answer in answers if answer != ["200"])

    def whole_view(self) -> tuple[int, int]:
        return len(self.workers), sum(self.instances.values())

    def state(self, worker: str) -> tuple[bool, tuple | None, int | None]:
        view, (pool, dead) = self.master_view(), self.pool(worker)
        return view == self.whole_view() and pool == self.instances[worker] and not dead, view, pool, dead


def faults(master: str, worker: str) -> dict:
    return {
        "node kill -9": (worker, "systemctl kill --signal=KILL omniboxes-node"),
        "instance kill -9": (worker, "systemctl kill --signal=KILL omniboxes-instance@9000"),
        "instance kill -9, upstream alone": (
            worker, "systemctl stop omniboxes-pool && systemctl kill --signal=KILL omniboxes-instance@9000"),
        "master kill -9": (master, "systemctl kill --signal=KILL omniboxes-master"),
        "master restart": (master, "systemctl restart omniboxes-master"),
        "registry restart": (master, "systemctl restart redis-server@6379"),
        "registry kill -9": (master, "systemctl kill --signal=KILL redis-server@6379"),
        "pool Redis kill -9": (worker, "systemctl kill --signal=KILL redis-server@6380"),
        # The floor: upstream's instance servers alone, whose watchdog adds a lost port back every 30 s.
        "pool Redis kill -9, upstream alone": (
            worker, "systemctl stop omniboxes-pool && systemctl kill --signal=KILL redis-server@6380"),
    }


# What a fault leaves that the next one must not inherit.
AFTER = {"pool Redis kill -9, upstream alone": "systemctl start omniboxes-pool",
         "instance kill -9, upstream alone": "systemctl start omniboxes-pool"}


def wait_whole(cluster: Cluster, worker: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not cluster.state(worker)[0]:
        if time.monotonic() > deadline:
            sys.exit(f"the cluster is not whole: {cluster.state(worker)[1:]} of {cluster.whole_view()}")
        time.sleep(1)


def observe(cluster: Cluster, worker: str, start: float) -> dict:
    detected = recovered = pool_back = None
    view = pool = None
    pool_lost = False
    dead_polls = 0
    while time.monotonic() - start < DEADLINE:
        whole, view, pool, dead = cluster.state(worker)
        now = time.monotonic() - start
        dead_polls += bool(dead)
        if pool != cluster.instances[worker] or dead:
            pool_lost = True
        elif pool_lost and pool_back is None:
            pool_back = now
        if detected is None and not whole:
            detected = now
        elif detected is not None and whole:
            recovered = now
            break
        elif detected is None and now > 30:
            break  # the fault never showed
        time.sleep(POLL)
    nodes, capacity = view or (0, 0)
    whole_nodes, whole_capacity = cluster.whole_view()
    return {"detect": detected, "recover": recovered, "pool": pool_back, "dead pooled": dead_polls * POLL,
            "lost": {"nodes": whole_nodes - nodes, "capacity": whole_capacity - capacity,
                     "pool ports": cluster.instances[worker] - (pool or 0)}}


def median_of(runs: list[dict], key: str) -> float | None:
    return median([run[key] for run in runs])


def table(results: dict, runs: int) -> str:
    lines = [f"OmniBoxes faults on the lab, medians of {runs} runs (seconds from the fault)",
             f"{'fault':<34} {'seen':>4} {'detect':>7} {'recover':>8} {'pool':>5} {'dead':>5}  "
             f"{'lost at the deadline':<34} target"]
    for fault, measured in results.items():
        seen = [run for run in measured if run["detect"] is not None]
        worst = {key: max(run["lost"][key] for run in measured) for key in measured[0]["lost"]}
        whole = all(run["recover"] is not None for run in seen) and not any(worst.values())
        pool = median_of(seen, "pool")
        if fault not in TARGETS:
            verdict = "ok (nothing lost)" if whole else "MISSED (lost or not back)"
        else:
            column, bound = TARGETS[fault]
            value = median_of(seen, column)
            met = whole and value is not None and value <= bound
            verdict = f"{'ok' if met else 'MISSED'} ({column} <= {bound:.0f} s, nothing lost)"
        lost = ", ".join(f"{key} {value}" for key, value in worst.items())
        lines.append(f"{fault:<34} {len(seen):>2}/{len(measured)} {fmt(median_of(seen, 'detect')):>7} "
                     f"{fmt(median_of(seen, 'recover')):>8} {fmt(pool):>5} {fmt(median_of(seen, 'dead pooled')):>5}  "
                     f"{lost:<34} {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-i", "--inventory", action="append", type=Path, required=True,
                        help="a lab where OmniBoxes is deployed")
    parser.add_argument("--only", action="append", help="only these faults (repeatable)")
    args = parser.parse_args()
    master, workers, hostvars = lab(args.inventory)
    cluster = Cluster(master, workers, hostvars)
    victim = workers[-1]
    results: dict = {}
    for fault, (host, command) in faults(master, victim).items():
        if args.only and fault not in args.only:
            continue
        for _ in range(args.runs):
            wait_whole(cluster, victim)
            time.sleep(2)
            start = time.monotonic()
            in_host(host, command)
            run = observe(cluster, victim, start)
            if fault in AFTER:
                in_host(host, AFTER[fault])
            results.setdefault(fault, []).append(run)
            print(f"  {fault:<34} {json.dumps(run)}", file=sys.stderr, flush=True)
    print(table(results, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
