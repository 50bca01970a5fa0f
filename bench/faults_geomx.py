"""Issue 20's fault matrix, GeoMX's row: a parameter server lost in the middle of a job.

Usage: python bench/faults_geomx.py -i INVENTORY [--runs N]
INVENTORY is a lab where the parameter_server role deployed a job (molecule geomx's, after converge: MXNet
dist_sync, a scheduler, one server, two workers, each in a container on its host's docker0). The bench deploys
the bundled dist_sync check as a long job (a round every 0.2 s until stopped), and each run:
  1. starts the job (`gymfleet restart --tags parameter_server`) and waits until every worker has done 3 rounds;
  2. kills the server with SIGKILL (its container, or its unit's processes with runtime host);
  3. asks `gymfleet status --json` until it shows the server DOWN and every process still running stalled;
  4. checks that the workers did no round since (ps-lite has no failover: they wait for the server forever);
  5. stops the job (`gymfleet stop --tags parameter_server`) and counts what is left on every host: containers,
     active units and processes of the job;
  6. starts it again and waits until every worker has done a round.
Columns, in seconds from the kill: detect (status shows it), stop (its own seconds), recover (from the restart's
start until every worker did a round). lost: the rounds done before the kill, which the job does again (ps-lite
keeps no checkpoint). The floor is what systemd alone says about the workers once status has seen the fault:
their units are active, so the stalled job looks healthy. Target: status names the lost server and its host,
and stop leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from faultlab import deploy, fmt, gymfleet, in_host, median

DEADLINE = 180.0
LONG_JOB = {"parameter_server_worker_program": (
    "/opt/gymfleet/parameter_server/venv/bin/python /opt/gymfleet/parameter_server/job/dist_sync_check.py"
    " --rounds 100000 --pause 0.2 --result /var/lib/parameter-server/%N.json")}
STATE_DIR = "/var/lib/parameter-server"


def processes(inventories: list[Path]) -> list[dict]:
    report, _ = gymfleet(inventories, "status")
    return report["systems"].get("parameter_server", {}).get("components", [])


def rounds(worker: dict) -> tuple[int, float]:
    """A worker's rounds done so far and when the last ended, from the result file it rewrites every round."""
    stem = worker["metrics"]["unit"].removesuffix(".service")
    done = in_host(worker["host"], f"cat {STATE_DIR}/{stem}.json", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return 0, 0.0
    result = json.loads(done.stdout)
    return result.get("rounds", 0), result.get("at", 0.0)


def rounds_done(workers: list[dict]) -> list[int]:
    return [done for done, _ in map(rounds, workers)]


def wait_rounds(workers: list[dict], least: int, after: float = 0.0) -> float | None:
    """Seconds until every worker has done `least` rounds, the last of them ended after `after` (epoch)."""
    start = time.monotonic()
    while time.monotonic() - start < DEADLINE:
        if all(done >= least and at > after for done, at in map(rounds, workers)):
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def kill(server: dict) -> None:
    stem = server["metrics"]["unit"].removesuffix(".service")
    if "in a container" in server["detail"]:
        in_host(server["host"], f"docker kill --signal KILL {stem}")
    else:
        in_host(server["host"], f"systemctl kill --signal KILL {server['metrics']['unit']}")


def left_behind(hosts: list[str]) -> list[str]:
    """Containers, active units and processes of the job on the hosts."""
    left = []
    for host in hosts:
        found = in_host(host, "docker ps --all --quiet --filter label=gymfleet.component=parameter_server 2>/dev/null;"
                              " systemctl list-units --plain --no-legend --state=active,activating,deactivating"
                              " 'parameter-server-*'; pgrep -af '[d]ist_sync_check'", check=False)
        left += [f"{host}: {line}" for line in found.stdout.splitlines() if line.strip()]
    return left


def one_run(inventories: list[Path]) -> dict:
    started, _ = gymfleet(inventories, "restart", "--tags", "parameter_server", "-e", json.dumps(LONG_JOB))
    if not started["ok"]:
        sys.exit(f"the job did not start: {started['failures']}")
    # Result files of an earlier run stay until a worker rewrites them, and the restart returns once the new workers
    # started (their containers are still being created): only rounds ended from now on count.
    epoch = time.time()
    rows = processes(inventories)
    hosts = sorted({row["host"] for row in rows})
    workers = [row for row in rows if row["metrics"]["kind"] in ("worker", "master_worker")]
    server = next(row for row in rows if row["metrics"]["kind"] in ("server", "global_server"))
    if wait_rounds(workers, 3, after=epoch) is None:
        sys.exit("the workers did not do 3 rounds")
    before = rounds_done(workers)
    killed = time.monotonic()
    kill(server)
    detect = None
    while time.monotonic() - killed < DEADLINE:
        states = {(row["host"], row["component"]): row["state"] for row in processes(inventories)}
        # The server DOWN, and no process of the job up any more: the ones still running are DOWN, stalled.
        if states[(server["host"], server["component"])] == "DOWN" and "up" not in states.values():
            detect = time.monotonic() - killed
            break
    systemd_says = sorted({in_host(w["host"], f"systemctl is-active {w['metrics']['unit']}", check=False).stdout.strip()
                           for w in workers})
    at_detect = rounds_done(workers)
    time.sleep(3)
    stalled = rounds_done(workers) == at_detect
    stopped, stop_seconds = gymfleet(inventories, "stop", "--yes", "--tags", "parameter_server")
    left = left_behind(hosts)
    restart_start = time.monotonic()
    again, _ = gymfleet(inventories, "restart", "--tags", "parameter_server", "-e", json.dumps(LONG_JOB))
    recover = wait_rounds(workers, 1, after=time.time()) if again["ok"] else None
    return {"detect": detect, "named": f"{server['component']} on {server['host']}", "stalled": stalled,
            "systemd": "/".join(systemd_says), "stop ok": stopped["ok"], "stop": stop_seconds, "left": left,
            "recover": None if recover is None else time.monotonic() - restart_start, "lost rounds": min(before)}


def table(runs: list[dict]) -> str:
    met = all(run["detect"] is not None and run["stalled"] and run["stop ok"] and not run["left"] for run in runs)
    header = "| fault | seen | detect | stop | left | recover | lost | systemd alone (floor) | target |"
    return "\n".join([
        f"GeoMX: a server lost mid-job, medians of {len(runs)} runs (seconds)", header,
        "|" + "---|" * header.count(" | ") + "---|",
        f"| {runs[0]['named']} kill -9 | {sum(run['detect'] is not None for run in runs)}/{len(runs)} "
        f"| {fmt(median([r['detect'] for r in runs]))} | {fmt(median([r['stop'] for r in runs]))} "
        f"| {sum(len(r['left']) for r in runs)} | {fmt(median([r['recover'] for r in runs]))} "
        f"| {min(r['lost rounds'] for r in runs)}+ rounds | workers {runs[0]['systemd']}, never seen "
        f"| named, nothing left: {'ok' if met else 'MISSED'} |"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-i", "--inventory", action="append", type=Path, required=True,
                        help="a lab where the parameter_server role deployed a job")
    args = parser.parse_args()
    # The long job's program, installed once; each run starts it with a restart.
    deploy(args.inventory, "parameter_server", LONG_JOB)
    runs = []
    for _ in range(args.runs):
        runs.append(one_run(args.inventory))
        print(f"  {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    gymfleet(args.inventory, "stop", "--yes", "--tags", "parameter_server")
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
