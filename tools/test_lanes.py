#!/usr/bin/env python3
"""Run the suite's parts side by side: lint, unit, every molecule scenario and integration, in lanes.

Each part is independent (every molecule scenario and the integration suite is a lab of its own, on a network of
its own), so while one part waits on a lab host (a boot, a download, a service's health period) another uses the
CPU. Parts start longest first, by the durations the last run on this machine recorded
(~/.cache/gymfleet/test-durations.json), else by ESTIMATES. Each part's output goes to .cache/test-logs/<part>.log;
a failed part's tail is printed. At the end: each part's time, the wall time, the share of CPU time that was
idle, and one closing line.

Usage: python tools/test_lanes.py [--lanes N] [PART ...]   (PART: lint, unit, integration, molecule:<scenario>)
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Beside the lab's caches, so a fresh clone on the same machine (CI's) orders its parts by the last run here.
RECORD = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gymfleet" / "test-durations.json"
LOGS = ROOT / ".cache" / "test-logs"
# Seconds each part took in two lanes on this kind of machine (2 cores, a first run: caches cold), the order when
# no run here has recorded its own yet.
ESTIMATES = {
    "integration": 499, "molecule:omniboxes": 439, "molecule:ray": 412, "molecule:geomx": 387,
    "molecule:slurm": 231, "molecule:tailscale": 227, "molecule:openenv": 172, "unit": 98,
    "molecule:python_env": 69, "lint": 56, "molecule:firewall": 55, "molecule:redis": 50,
    "molecule:preflight": 30, "molecule:cluster_address": 17,
}
# Two lanes on two cores: one lane alone leaves the CPU idle in bursts only (downloads, health periods, boots),
# so a third part would mostly slow the two running (README's test section has the figures).
DEFAULT_LANES = 2
# Issue 37's target for `make test` on a warm machine (a figure to read, not a check).
TARGET_WALL = 1800


def scenarios() -> list[str]:
    return sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))


def command(part: str) -> list[str]:
    if part == "lint":
        return ["make", "--no-print-directory", "lint"]
    if part == "unit":
        return ["pytest", "--numprocesses=auto", "tests/unit"]
    if part == "integration":
        return ["pytest", "--durations=20", "tests/integration"]
    scenario = part.removeprefix("molecule:")
    # A lab of the scenario left by an interrupted run is destroyed first; otherwise no destroy before the test.
    return ["bash", "-c",
            f'if [ -n "$(docker ps --all --quiet --filter label=gymfleet.lab={scenario})" ] || '
            f"grep -qs 'created: true' $HOME/.ansible/tmp/molecule.*.{scenario}/state.yml; then "
            f"molecule destroy -s {scenario} || exit 1; fi; exec molecule test -s {scenario}"]


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot; idle counts iowait too: a core waiting on I/O runs nothing."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


@dataclass(order=True)
class Part:
    priority: float
    name: str = field(compare=False)
    seconds: float = field(default=0.0, compare=False)
    passed: bool | None = field(default=None, compare=False)


class Lanes:
    def __init__(self, parts: list[str], lanes: int, record: dict):
        self.queue = [Part(-record.get(name, ESTIMATES.get(name, 300)), name) for name in parts]
        heapq.heapify(self.queue)
        self.done: list[Part] = []
        self.lanes = lanes
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{time.monotonic() - self.started:6.0f} s] {text}", flush=True)

    def run_one(self, part: Part) -> None:
        log = LOGS / f"{part.name.replace(':', '-')}.log"
        self.say(f"start {part.name} (log: {log.relative_to(ROOT)})")
        begin = time.monotonic()
        with open(log, "w") as out:
            proc = subprocess.run(command(part.name), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, check=False)
        part.seconds, part.passed = time.monotonic() - begin, proc.returncode == 0
        if part.passed:
            self.say(f"{part.name} passed in {part.seconds:.0f} s")
        else:
            tail = log.read_text(errors="replace").splitlines()[-80:]
            self.say(f"{part.name} FAILED (exit {proc.returncode}) in {part.seconds:.0f} s; its log ends:\n"
                     + "\n".join(f"    {line}" for line in tail))

    def worker(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    return
                part = heapq.heappop(self.queue)
            self.run_one(part)
            with self.lock:
                self.done.append(part)

    def run(self) -> list[Part]:
        threads = [threading.Thread(target=self.worker) for _ in range(self.lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", type=int, default=int(os.environ.get("LANES", DEFAULT_LANES)))
    parser.add_argument("parts", nargs="*", help="default: lint, unit, every molecule scenario, integration")
    args = parser.parse_args()
    every = ["lint", "unit", *(f"molecule:{name}" for name in scenarios()), "integration"]
    unknown = [part for part in args.parts if part not in every]
    if unknown:
        print(f"test_lanes: unknown parts {unknown}; fix: use some of {every}", file=sys.stderr)
        return 2
    if args.lanes < 1:
        print(f"test_lanes: --lanes {args.lanes}; fix: give 1 or more", file=sys.stderr)
        return 2
    LOGS.mkdir(parents=True, exist_ok=True)
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    idle0, total0 = cpu_times()
    lanes = Lanes(args.parts or every, args.lanes, record)
    done = lanes.run()
    idle1, total1 = cpu_times()
    wall = time.monotonic() - lanes.started
    record.update({part.name: round(part.seconds) for part in done if part.passed})
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
    idle = (idle1 - idle0) / max(total1 - total0, 1)
    (LOGS / "summary.json").write_text(json.dumps({
        "lanes": args.lanes, "wall": round(wall), "idle_share": round(idle, 3),
        "parts": {part.name: {"seconds": round(part.seconds), "passed": part.passed} for part in done}}, indent=1))

    print(f"\n{'part':<28} {'seconds':>8}  result")
    for part in sorted(done, key=lambda p: -p.seconds):
        print(f"{part.name:<28} {part.seconds:>8.0f}  {'passed' if part.passed else 'FAILED'}")
    print(f"{'wall time, ' + str(args.lanes) + ' lanes':<28} {wall:>8.0f}  (parts summed: "
          f"{sum(p.seconds for p in done):.0f} s)")
    print(f"CPU idle share over the run: {idle:.0%}; target for the wall time: {TARGET_WALL} s")
    failed = sum(not part.passed for part in done)
    print(f"parts: {len(done) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
