"""Issue 20's fault matrix, OpenEnv / Envoy's rows: each fault induced on the real processes of a lab, and what
Envoy and its clients see.

Usage: python bench/faults_envoy.py -i INVENTORY [--runs N]
INVENTORY is a lab where OpenEnv and Envoy are deployed (such as molecule openenv's, after converge: Envoy on the
first host of openenv_envoy, servers on openenv_worker). The controller must reach Envoy's listener.

Every fault is run against two settings of the same Envoy, side by side:
  gymfleet  as deployed: active health checks every envoy_health_interval (1 s), 2 failures eject, 1 success
            takes a backend back
  floor     the same with a 5 s interval, the usual value in Envoy's own examples
The faults:
  backend kill -9   SIGKILL to a server's processes (systemd starts it again after openenv_restart_sec)
  envoy restart     systemctl restart of Envoy
Measured from the fault, polling every 0.1 s:
  eject     Envoy's admin flags the backend unhealthy (backend kill -9)
  answers   the killed server answers /health again, asked directly
  readd     Envoy counts it healthy again, from the moment it answers
  down      the longest stretch of failed requests through Envoy (GET /health, 20 a second from the controller)
  failed    requests through Envoy that failed, of those sent until everything is back
  sessions  WebSocket sessions opened through Envoy before the fault (the OpenEnv client, reset) whose next step
            failed: a killed backend's sessions are lost, and their clients must reset
Then, once, the servers at their session limit: sessions opened through Envoy one after another, each reset, until
8 have been tried; how many were accepted, and what the refused clients saw.
Targets: Envoy ejects a dead backend <= 3 s and takes it back <= 3 s after it answers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from faultlab import address_of, deploy, fmt, in_host, inventory_listing, median

POLL = 0.1
DEADLINE = 60.0
SESSIONS = 4
TARGETS = {"eject": 3.0, "readd": 3.0}
FLOOR = {"envoy_health_interval": "5s"}


def lab(inventories: list[Path]) -> tuple[str, list[str]]:
    listing = inventory_listing(inventories)
    return listing["openenv_envoy"]["hosts"][0], sorted(listing["openenv_worker"]["hosts"])


def healthy_backends(envoy: str) -> dict[str, bool]:
    """backend address:port -> whether Envoy counts it healthy, from Envoy's admin (on the Envoy host's loopback)."""
    done = in_host(envoy, "curl -s --max-time 1 http://127.0.0.1:9901/clusters", check=False)
    flags = {}
    for line in done.stdout.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == "openenv_cluster" and parts[2] == "health_flags":
            flags[parts[1]] = parts[3].strip() == "healthy"
    return flags


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:  # noqa: S310 - the lab's own server
            return response.status == 200
    except OSError:
        return False


class Traffic:
    """GET /health through Envoy, 20 a second, in the background: how many failed, and the longest failed run."""

    def __init__(self, url: str):
        self.url, self.sent, self.failed, self.longest = url, 0, 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        down_since = None
        while not self._stop.is_set():
            ok = answers(self.url)
            now = time.monotonic()
            self.sent += 1
            if not ok:
                self.failed += 1
                down_since = down_since or now
                self.longest = max(self.longest, now - down_since)
            else:
                down_since = None
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def open_sessions(url: str, count: int):
    """OpenEnv clients (the project `openenv init` made, as molecule openenv's verify uses it), each reset once."""
    sys.path.insert(0, os.environ.get("OPENENV_PROJECT", ""))
    from echo_env import EchoAction, EchoEnv

    sessions = []
    while len(sessions) < count:
        client = EchoEnv(base_url=url).sync()
        try:
            client.__enter__()
            client.reset()
        except Exception as exc:  # noqa: BLE001 - a session refused before the fault is not the fault's
            print(f"  a session before the fault failed ({type(exc).__name__}); opening another", file=sys.stderr)
            time.sleep(0.5)
            continue
        sessions.append(client)
    return sessions, EchoAction


def lost_sessions(sessions, action) -> int:
    lost = 0
    for client in sessions:
        try:
            client.step(action(message="after the fault"))
        except Exception:  # noqa: BLE001 - whatever the client raises is what its user sees
            lost += 1
        with contextlib.suppress(Exception):  # a lost session may fail to close as well
            client.__exit__(None, None, None)
    return lost


def capacity(url: str, tries: int = 8) -> dict:
    """Sessions accepted through Envoy before the servers refuse more, and the errors of the refused ones."""
    sys.path.insert(0, os.environ.get("OPENENV_PROJECT", ""))
    from echo_env import EchoEnv

    accepted, refused = [], []
    for _ in range(tries):
        client = EchoEnv(base_url=url).sync()
        try:
            client.__enter__()
            client.reset()
            accepted.append(client)
        except Exception as exc:  # noqa: BLE001 - what a refused client raises is the finding
            refused.append(f"{type(exc).__name__}: {str(exc)[:80]}")
    for client in accepted:
        with contextlib.suppress(Exception):
            client.__exit__(None, None, None)
    return {"tried": tries, "accepted": len(accepted), "refused": sorted(set(refused))}


def wait_all_healthy(envoy: str, backends: list[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not all(healthy_backends(envoy).get(b) for b in backends):
        if time.monotonic() > deadline:
            sys.exit(f"Envoy does not count every backend healthy: {healthy_backends(envoy)}")
        time.sleep(0.5)


def backend_kill(envoy: str, victim: str, backend: str, url: str, backends: list[str]) -> dict:
    sessions, action = open_sessions(url, SESSIONS)
    with Traffic(url + "/health") as traffic:
        start = time.monotonic()
        in_host(victim, "systemctl kill --signal=KILL openenv@8000")
        eject = answered = readd = None
        while time.monotonic() - start < DEADLINE and readd is None:
            now = time.monotonic() - start
            if eject is None and healthy_backends(envoy).get(backend) is False:
                eject = now
            if answered is None and answers(f"http://{backend}/health"):
                answered = now
            if answered is not None and eject is not None and healthy_backends(envoy).get(backend):
                readd = time.monotonic() - start - answered
            time.sleep(POLL)
    return {"eject": eject, "answers": answered, "readd": readd, "down": traffic.longest, "failed": traffic.failed,
            "sent": traffic.sent, "sessions": lost_sessions(sessions, action)}


def envoy_restart(envoy: str, url: str, backends: list[str]) -> dict:
    sessions, action = open_sessions(url, SESSIONS)
    with Traffic(url + "/health") as traffic:
        start = time.monotonic()
        in_host(envoy, "systemctl restart envoy")
        back = None
        while time.monotonic() - start < DEADLINE and back is None:
            if answers(url + "/health") and all(healthy_backends(envoy).get(b) for b in backends):
                back = time.monotonic() - start
            time.sleep(POLL)
        time.sleep(1)
    return {"eject": None, "answers": None, "readd": back, "down": traffic.longest, "failed": traffic.failed,
            "sent": traffic.sent, "sessions": lost_sessions(sessions, action)}


def measure(label: str, inventories: list[Path], runs: int, extra: dict | None) -> dict:
    deploy(inventories, "always,openenv", extra)
    envoy, workers = lab(inventories)
    url = f"http://{address_of(envoy)}:8000"
    backends = [f"{address_of(w)}:8000" for w in workers]
    results: dict = {}
    for _ in range(runs):
        for fault in ("backend kill -9", "envoy restart"):
            wait_all_healthy(envoy, backends)
            time.sleep(2)
            run = (backend_kill(envoy, workers[-1], backends[-1], url, backends) if fault == "backend kill -9"
                   else envoy_restart(envoy, url, backends))
            results.setdefault(fault, []).append(run)
            shown = {key: round(value, 2) if isinstance(value, float) else value for key, value in run.items()}
            print(f"  {label:<9} {fault:<16} {json.dumps(shown)}", file=sys.stderr, flush=True)
    return results


def median_of(runs: list[dict], key: str) -> float | None:
    return median([run[key] for run in runs])


def table(ours: dict, floor: dict, runs: int) -> str:
    lines = [f"OpenEnv / Envoy faults on the lab, medians of {runs} runs (seconds; readd counts from the server "
             "answering again, envoy restart's from the restart)",
             f"{'fault':<16} {'eject':>6} {'answers':>8} {'readd':>6} {'down':>5} {'failed':>10} {'sessions lost':>14}"
             f" {'floor eject':>12} {'floor readd':>12}  target"]
    for fault, measured in ours.items():
        eject, readd = median_of(measured, "eject"), median_of(measured, "readd")
        floor_eject, floor_readd = median_of(floor[fault], "eject"), median_of(floor[fault], "readd")
        failed = f"{sum(r['failed'] for r in measured)}/{sum(r['sent'] for r in measured)}"
        lost = f"{sum(r['sessions'] for r in measured)}/{SESSIONS * len(measured)}"
        if fault == "backend kill -9":
            met = eject is not None and eject <= TARGETS["eject"] and readd is not None and readd <= TARGETS["readd"]
            verdict = f"{'ok' if met else 'MISSED'} (eject <= 3 s, readd <= 3 s)"
        else:
            verdict = "ok (back)" if all(r["readd"] is not None for r in measured) else "MISSED (not back)"
        lines.append(f"{fault:<16} {fmt(eject):>6} {fmt(median_of(measured, 'answers')):>8} {fmt(readd):>6} "
                     f"{fmt(median_of(measured, 'down')):>5} {failed:>10} {lost:>14} {fmt(floor_eject):>12} "
                     f"{fmt(floor_readd):>12}  {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-i", "--inventory", action="append", type=Path, required=True,
                        help="a lab where OpenEnv and Envoy are deployed")
    parser.add_argument("--project", type=Path, required=True,
                        help="the environment project the lab serves (for its client), such as echo_env's parent")
    args = parser.parse_args()
    os.environ["OPENENV_PROJECT"] = str(args.project)
    floor = measure("floor", args.inventory, args.runs, FLOOR)
    ours = measure("gymfleet", args.inventory, args.runs, None)
    print(table(ours, floor, args.runs))
    envoy, _ = lab(args.inventory)
    limit = capacity(f"http://{address_of(envoy)}:8000")
    print(f"servers at their session limit: {limit['accepted']} of {limit['tried']} sessions accepted through Envoy; "
          f"the others saw: {'; '.join(limit['refused']) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
