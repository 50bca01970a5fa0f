"""`gymfleet logs SYSTEM`: the journal (and the log files) of one system's services on every host that runs them,
interleaved by time with the host in front, bounded in lines and time.

One ad-hoc call of the module service_logs per poll, on the hosts of the system's groups (meta/systems.yml).
"""

from __future__ import annotations

import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gymfleet.errors import Exit, GymfleetError
from gymfleet.manifest import system_components
from gymfleet.runner import _ansible_env, check_limit, load_inventory

DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
FOLLOW_EVERY = 2.0


def parse_since(text: str, now: float | None = None) -> float:
    """--since: a duration ago (30s, 10m, 2h, 1d), an epoch time (@1796547600) or a local date and time
    (2026-12-06 09:00, 2026-12-06T09:00:05); seconds since the epoch."""
    now = time.time() if now is None else now
    text = text.strip()
    found = DURATION.match(text)
    if found:
        return now - float(found.group(1)) * SECONDS[found.group(2)]
    if text.startswith("@") and re.fullmatch(r"@\d+(\.\d+)?", text):
        return float(text[1:])
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout).timestamp()
        except ValueError:
            continue
    raise GymfleetError(f"--since {text}: not a time; fix: give a duration ago (30s, 10m, 2h, 1d), a local time "
                        "(2026-12-06 09:00) or @EPOCH")


@dataclass(frozen=True)
class Entry:
    time: float
    host: str
    source: str
    message: str

    def line(self) -> str:
        stamp = datetime.fromtimestamp(self.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{stamp} {self.host} {self.source}: {self.message}"


def read_logs(root: Path, inventory: list[str], roles: list[str], groups: list[str], host: str | None, since: float,
              lines: int, stop: threading.Event) -> tuple[list[Entry], list[str]]:
    """Every host's entries merged by time (the newest `lines`), and one line per host that did not answer."""
    import ansible_runner

    found = load_inventory(inventory, root)
    check_limit(found, host)
    members = {name for group in groups for name in found.groups.get(group, [])}
    if not members or (host and not members & set(_limited(found, host))):
        where = f"host {host}" if host else f"the inventory {' '.join(inventory)}"
        raise GymfleetError(f"no host of {where} is in the groups {', '.join(groups)}; fix: name one of "
                            f"{', '.join(sorted(members)) or '(none: put hosts in those groups)'}")
    entries: list[Entry] = []
    problems: list[str] = []

    def on_event(event: dict) -> bool:
        data = event.get("event_data", {})
        kind, name, res = event.get("event"), data.get("host"), data.get("res") or {}
        if kind == "runner_on_ok":
            entries.extend(Entry(e["time"], name, e["source"], e["message"]) for e in res.get("entries", []))
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            problems.append(f"{name}: {'unreachable' if kind == 'runner_on_unreachable' else 'failed'}: "
                            f"{' '.join(str(res.get('msg', '')).split())}")
        return False

    arguments = f"components={','.join(roles)} since={since:.6f} lines={lines}"
    with tempfile.TemporaryDirectory(prefix="gymfleet-logs-") as private:
        ansible_runner.run(private_data_dir=private, host_pattern=":".join(groups), module_args=arguments,
                           module="gymfleet.cluster.service_logs", limit=host, quiet=True,
                           inventory=[str(Path(s).resolve()) for s in inventory], envvars=_ansible_env(root),
                           event_handler=on_event, cancel_callback=stop.is_set)
    entries.sort(key=lambda entry: entry.time)
    return entries[-lines:], problems


def _limited(inventory, pattern: str) -> list[str]:
    names = set()
    for part in re.split(r"[,:]", pattern):
        names |= set(inventory.groups.get(part, [part]))
    return sorted(names)


def show(root: Path, inventory: list[str], system: str, host: str | None, since: str | None, lines: int,
         follow: bool, out=sys.stdout) -> int:
    """Print the entries; with follow, poll every FOLLOW_EVERY seconds for newer ones until Ctrl-C."""
    roles, groups = system_components(root, system)
    start = parse_since(since) if since else 0.0
    shown: set[Entry] = set()
    # Ctrl-C ends the poll in progress (ansible-runner is told to cancel) and the loop; without a handler of
    # ours, ansible-runner's own would take the signal and nothing would end.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        while not stop.is_set():
            entries, problems = read_logs(root, inventory, roles, groups, host, start, lines, stop)
            if stop.is_set():
                break
            for entry in entries:
                if entry not in shown:
                    print(entry.line(), file=out, flush=True)
            for problem in problems:
                print(f"gymfleet: logs: {problem}", file=sys.stderr, flush=True)
            if not follow:
                return Exit.NOT_OK if problems else Exit.OK
            if entries:
                # The next poll starts at the newest time seen; what was seen at that very time is not shown again.
                start = entries[-1].time
                shown = {entry for entry in entries if entry.time == start}
            elif not start:
                start = time.time()
            stop.wait(FOLLOW_EVERY)
    finally:
        signal.signal(signal.SIGINT, previous)
    return Exit.OK if follow else Exit.INTERRUPTED
