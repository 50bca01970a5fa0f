"""Issue 16's figures: real OmniBoxes (upstream's code, Debian's chromium) on 3 lab hosts, 2 instances each.

Usage: python bench/omniboxes.py [--runs N] [--webgym PATH] [--nodes N] [--instances N] [--keep] [--reuse]

Brings up a lab of its own (`gymfleet lab up --name omnibench`), deploys OmniBoxes from PATH (default
../shared/upstream/webgym, microsoft/webgym unchanged) with omniboxes_browser system, node1 the master in mode
both and every host a worker, then measures, medians of N runs (default 3):
  flush_restart     gymfleet's flush_restart playbook, until the master reports every node healthy at full
                    capacity, beside the floor: the same by hand on every host at once (stop every OmniBoxes
                    unit, delete the registry keys and pool sets, start the units, poll the master)
  graceful leave    a worker's node server stopped: seconds from the stop until its registry key is gone, as the
                    master's Redis sees it
  crash reported    an instance server whose port another program holds: seconds the services engine's start
                    takes to fail, and whether the failure carries the journal's cause (address already in use)
Targets (issue 16): flush_restart <= 30 s, graceful leave <= 1 s, a crash reported <= 10 s with its cause.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAB = "omnibench"
REGISTRY_PORT, POOL_PORT, MASTER_PORT, FIRST_PORT = 6479, 6380, 7000, 9000
TARGETS = {"flush_restart": 30.0, "graceful leave": 1.0, "crash reported": 10.0}
ENV = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                    "ANSIBLE_NOCOLOR": "1"}

# Run on the master: wait until every node is healthy and the pools are full; prints the seconds it waited.
WAIT_FULL = r"""
import json, sys, time, urllib.request
nodes, capacity, port = (int(arg) for arg in sys.argv[1:4])
deadline, start = time.time() + 300, time.time()
while time.time() < deadline:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/info", headers={"x-api-key": "default_key"})
        info = json.load(urllib.request.urlopen(request, timeout=2))["nodes"]
        healthy = [n for n in info if n["healthy"]]
        if len(healthy) == nodes and sum(n["available"] for n in healthy) == capacity:
            print(time.time() - start)
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("the master never reported every node healthy at full capacity")
"""


def sh(command: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=ROOT, **kwargs)
    if check and proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return proc


def in_host(host: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(["docker", "exec", host, "sh", "-c", script], check=check)


def playbook(name: str, inventories: list[Path], *extra: str, check: bool = True) -> tuple[float, str]:
    args = [str(BIN / "ansible-playbook")] + [arg for inventory in inventories for arg in ("-i", str(inventory))]
    start = time.monotonic()
    proc = sh([*args, str(ROOT / "playbooks" / f"{name}.yml"), *extra], check=check)
    return time.monotonic() - start, proc.stdout + proc.stderr


def overlay(hosts: list[str], webgym: Path, instances: int, directory: Path) -> Path:
    path = directory / "omniboxes.yml"
    path.write_text(json.dumps({"all": {
        "vars": {"omniboxes_source": "path", "omniboxes_local_path": str(webgym), "omniboxes_browser": "system",
                 "omniboxes_instances": instances, "omniboxes_master_redis_port": REGISTRY_PORT,
                 "omniboxes_redis_port": POOL_PORT},
        "children": {"omniboxes_master": {"hosts": {hosts[0]: {}}},
                     "omniboxes_worker": {"hosts": {h: {} for h in hosts}}}}}))
    return path


def wait_full(master: str, nodes: int, capacity: int) -> float:
    return float(sh(["docker", "exec", master, "python3", "-c", WAIT_FULL, str(nodes), str(capacity),
                     str(MASTER_PORT)]).stdout)


def parallel(hosts: list[str], script: str) -> None:
    procs = [subprocess.Popen(["docker", "exec", host, "sh", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for host in hosts]
    for host, proc in zip(hosts, procs, strict=True):
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"{host}: {script} failed: {out}")


def flush_restart_by_hand(hosts: list[str], names: dict[str, str], capacity: int) -> float:
    """The floor: what flush_restart does, typed on every host at once, timed until the master's view is full."""
    start = time.monotonic()
    parallel(hosts, "systemctl stop 'omniboxes-*'")
    keys = " ".join(f"omnibox:nodes:{names[h]}" for h in hosts[1:])
    in_host(hosts[0], f"redis-cli -p {REGISTRY_PORT} -n 1 del {keys} >/dev/null")
    parallel(hosts, f"redis-cli -p {POOL_PORT} del available in_use >/dev/null && systemctl start "
                    "omniboxes-instances omniboxes-node && { systemctl start omniboxes-master 2>/dev/null || true; }")
    wait_full(hosts[0], len(hosts), capacity)
    return time.monotonic() - start


def graceful_leave(master: str, worker: str, name: str) -> float:
    key = f"omnibox:nodes:{name}"
    watcher = subprocess.Popen(
        ["docker", "exec", master, "sh", "-c",
         f"while [ \"$(redis-cli -p {REGISTRY_PORT} -n 1 exists {key})\" != 1 ]; do sleep 0.05; done; echo ready; "
         f"while [ \"$(redis-cli -p {REGISTRY_PORT} -n 1 exists {key})\" = 1 ]; do :; done; date +%s.%N"],
        stdout=subprocess.PIPE, text=True)
    assert watcher.stdout.readline().strip() == "ready"
    stopped = float(in_host(worker, "date +%s.%N; systemctl stop omniboxes-node").stdout.split()[0])
    gone = float(watcher.communicate(timeout=60)[0].split()[-1])
    in_host(worker, "systemctl start omniboxes-node")
    return gone - stopped


def crash_reported(inventories: list[Path], worker: str) -> tuple[float, bool]:
    port = FIRST_PORT + 1
    in_host(worker, f"systemctl stop omniboxes-instance@{port}; "
                    f"nohup python3 -m http.server {port} >/dev/null 2>&1 & sleep 1")
    try:
        _, out = playbook("start", inventories, "--limit", worker, "--tags", "always,omniboxes", "-e",
                          '{"omniboxes_wait": false}', check=False)
    finally:
        in_host(worker, f"pkill -f 'http.server {port}'", check=False)
    took = re.search(r"Start the OmniBoxes processes -+ ([\d.]+)s", out)
    cause = f"omniboxes-instance@{port}.service died while starting" in out and "address already in use" in out
    if not took:
        sys.exit(f"no timing of the engine's start in:\n{out[-3000:]}")
    return float(took.group(1)), cause


def row(label: str, gymfleet: float, floor: float | None, note: str = "") -> str:
    target = TARGETS[label]
    ratio = f"{gymfleet / floor:.1f}x" if floor else "-"
    verdict = "ok" if gymfleet <= target and "MISSED" not in note else "MISSED"
    return (f"{label:<16} {gymfleet:>9.2f} {floor if floor is not None else float('nan'):>8.2f} {ratio:>6} "
            f"{'<= ' + format(target, '.0f') + ' s':>8}  {verdict} {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--webgym", default=str(ROOT.parent / "shared" / "upstream" / "webgym"))
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--instances", type=int, default=2, help="instances per host")
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    parser.add_argument("--reuse", action="store_true", help="use the lab a --keep run left (deployed again)")
    args = parser.parse_args()
    if not args.reuse:
        sh([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], check=False)
        # The bare image: the first deploy installs chromium as on a fresh machine.
        sh([str(BIN / "gymfleet"), "lab", "up", "--bare", "--name", LAB, "--nodes", str(args.nodes)])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lab = ROOT / "inventories" / "lab" / LAB
            hosts = [f"{LAB}-node{i}" for i in range(1, args.nodes + 1)]
            inventories = [lab, overlay(hosts, Path(args.webgym), args.instances, Path(tmp))]
            cold, _ = playbook("deploy", inventories, "--tags", "always,firewall,omniboxes")
            names = {host: in_host(host, "hostname").stdout.strip() for host in hosts}
            capacity = args.instances * len(hosts)
            ours, floor, leave, crash, causes = [], [], [], [], []
            for _ in range(args.runs):
                ours.append(playbook("flush_restart", inventories, "--tags", "always,omniboxes")[0])
                floor.append(flush_restart_by_hand(hosts, names, capacity))
                leave.append(graceful_leave(hosts[0], hosts[-1], names[hosts[-1]]))
                wait_full(hosts[0], len(hosts), capacity)
                seconds, cause = crash_reported(inventories, hosts[1])
                crash.append(seconds)
                causes.append(cause)
                playbook("start", inventories, "--limit", hosts[1], "--tags", "always,omniboxes")
            print(f"real OmniBoxes from {args.webgym}, Debian's chromium; {len(hosts)} hosts, {args.instances} "
                  f"instances each; {'deploy' if args.reuse else 'first deploy'} {cold:.0f} s; medians of "
                  f"{args.runs} runs")
            print(f"{'measure':<16} {'gymfleet':>9} {'floor':>8} {'ratio':>6} {'target':>8}  verdict")
            print(row("flush_restart", statistics.median(ours), statistics.median(floor)))
            print(row("graceful leave", statistics.median(leave), None))
            print(row("crash reported", statistics.median(crash), None,
                      "with the journal's cause" if all(causes) else "MISSED: no journal cause"))
    finally:
        if not args.keep:
            sh([str(BIN / "gymfleet"), "lab", "down", "--name", LAB], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
