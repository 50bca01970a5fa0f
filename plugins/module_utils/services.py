"""Service declarations: what a component runs on a host, as plain data that no runtime is named in.

A role turns its variables into a list of declarations; the services module hands them to a runtime
(systemd today) that converges, probes, stops or removes them. This file holds what every runtime shares:
checking a declaration, its definition hash, the start order and the health probes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import time
import urllib.error
import urllib.request

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.\-]*(@[A-Za-z0-9:_.\-]+)?$")
COMPONENT_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
HEALTH_KINDS = ("http", "tcp", "command")


class DeclarationError(ValueError):
    """A declaration that cannot run; the message names the service and the fix."""


# Every key a declaration may have, with its default. One table, so checking and filling in agree.
DEFAULTS = {
    "name": None,
    "description": "",
    "argv": None,
    "environment": {},
    "environment_files": [],
    "user": None,
    "group": None,
    "working_directory": None,
    "ports": [],
    "health": None,
    "after": [],
    "wants": [],
    "requires": [],
    "part_of": [],
    "type": "exec",
    "restart": "on-failure",
    "restart_sec": 3,
    "files": [],
    "watch": [],
    "unit_options": {},
    "service_options": {},
    "enabled": True,
    "tolerated_restarts": 0,
    # CPUs the service asks its runtime for (a SLURM step's --cpus-per-task); 0 leaves it to the runtime.
    "cpus": 0,
}
SERVICE_TYPES = ("exec", "simple", "notify", "forking", "oneshot")
RESTART_POLICIES = ("no", "on-failure", "always", "on-abnormal")


def _strings(name: str, key: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise DeclarationError(f"service {name}: {key} must be a list of strings")
    return [str(v) for v in value]


def _health(name: str, health) -> dict | None:
    if health is None:
        return None
    if not isinstance(health, dict):
        raise DeclarationError(f"service {name}: health must be a mapping with one of {', '.join(HEALTH_KINDS)}")
    kinds = [kind for kind in HEALTH_KINDS if health.get(kind)]
    if len(kinds) != 1:
        raise DeclarationError(
            f"service {name}: health needs exactly one of {', '.join(HEALTH_KINDS)}, not {kinds or 'none'}")
    unknown = set(health) - set(HEALTH_KINDS) - {"expect", "headers", "timeout"}
    if unknown:
        raise DeclarationError(f"service {name}: unknown health keys {sorted(unknown)}")
    probe = {"kind": kinds[0], "target": health[kinds[0]], "timeout": float(health.get("timeout", 3))}
    if probe["kind"] == "http":
        probe.update(expect=int(health.get("expect", 200)), headers=dict(health.get("headers") or {}))
    elif probe["kind"] == "tcp":
        host, _, port = str(probe["target"]).rpartition(":")
        if not host or not port.isdigit():
            raise DeclarationError(f"service {name}: health tcp {probe['target']!r} must be host:port")
    else:
        probe["target"] = _strings(name, "health command", probe["target"])
    return probe


def _seconds(name: str, key: str, value) -> int | float:
    """A non-negative number of seconds; a whole number stays an int, so a declaration's hash (and its unit's
    text) does not change when a caller passes 3.0 for 3."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DeclarationError(f"service {name}: {key} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise DeclarationError(f"service {name}: {key} {value!r}; fix: 0 or more seconds")
    return int(seconds) if seconds.is_integer() else seconds


def normalize(declaration: dict) -> dict:
    """A declaration with every key filled in, or DeclarationError naming what is wrong."""
    if not isinstance(declaration, dict):
        raise DeclarationError(f"a service declaration must be a mapping, not {declaration!r}")
    name = str(declaration.get("name") or "")
    if name.endswith(".service"):
        name = name[: -len(".service")]
    if not NAME_RE.match(name):
        raise DeclarationError(f"service name {name!r} is not a unit name; fix: letters, digits, :_.- and one @")
    unknown = set(declaration) - set(DEFAULTS)
    if unknown:
        raise DeclarationError(f"service {name}: unknown keys {sorted(unknown)}; fix: use {sorted(DEFAULTS)}")
    spec = {key: declaration.get(key) if declaration.get(key) is not None else default
            for key, default in DEFAULTS.items()}
    spec["name"] = name
    spec["argv"] = _strings(name, "argv", spec["argv"] or [])
    if not spec["argv"] or not spec["argv"][0].startswith("/"):
        raise DeclarationError(f"service {name}: argv must start with an absolute path to the program")
    for key in ("environment_files", "after", "wants", "requires", "part_of", "files", "watch"):
        spec[key] = _strings(name, key, spec[key])
    for key in ("environment", "unit_options", "service_options"):
        if not isinstance(spec[key], dict):
            raise DeclarationError(f"service {name}: {key} must be a mapping")
    spec["environment"] = {str(k): str(v) for k, v in spec["environment"].items()}
    spec["ports"] = sorted({int(p) for p in spec["ports"]})
    spec["cpus"] = int(spec["cpus"])
    spec["restart_sec"] = _seconds(name, "restart_sec", spec["restart_sec"])
    if spec["cpus"] < 0:
        raise DeclarationError(f"service {name}: cpus {spec['cpus']} is negative; fix: 0 (the runtime's default) "
                               "or more")
    if spec["type"] not in SERVICE_TYPES:
        raise DeclarationError(f"service {name}: type {spec['type']!r}; fix: one of {', '.join(SERVICE_TYPES)}")
    if spec["restart"] not in RESTART_POLICIES:
        raise DeclarationError(
            f"service {name}: restart {spec['restart']!r}; fix: one of {', '.join(RESTART_POLICIES)}")
    spec["health"] = _health(name, spec["health"])
    return spec


def normalize_all(declarations: list) -> list[dict]:
    specs = [normalize(d) for d in declarations or []]
    seen: set[str] = set()
    for spec in specs:
        if spec["name"] in seen:
            raise DeclarationError(f"service {spec['name']} is declared twice; fix: give each service its own name")
        seen.add(spec["name"])
    start_levels(specs)  # refuses a cycle before anything is written
    return specs


def definition_hash(spec: dict, file_digests: dict[str, str | None]) -> str:
    """Hash of everything the running process depends on: the declaration and the files it reads (its own
    and the watched ones, by their digests).

    Health, ports and enablement are left out: changing how a service is probed or whether it starts at
    boot does not make the process that runs stale.
    """
    relevant = {k: v for k, v in spec.items() if k not in ("health", "ports", "enabled", "description")}
    if not relevant.get("cpus"):
        relevant.pop("cpus", None)  # absent and 0 alike, so services declared before it existed keep their hash
    relevant["file_digests"] = {path: file_digests.get(path) for path in spec["files"] + spec["watch"]}
    text = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def start_levels(specs: list[dict]) -> list[list[dict]]:
    """Declarations in start order: each level's services depend (through `after`) only on earlier levels.

    Names in `after` that are not declared here order only through the runtime (systemd's After=).
    """
    by_name = {spec["name"]: spec for spec in specs}
    placed: dict[str, int] = {}
    levels: list[list[dict]] = []
    remaining = list(specs)
    while remaining:
        ready = [s for s in remaining
                 if all(dep in placed or dep.removesuffix(".service") not in by_name for dep in s["after"])]
        if not ready:
            names = ", ".join(s["name"] for s in remaining)
            raise DeclarationError(f"services {names} wait for each other in a cycle; fix: break it in `after`")
        for spec in ready:
            placed[spec["name"]] = len(levels)
        levels.append(ready)
        remaining = [s for s in remaining if s["name"] not in placed]
    return levels


def start_in_order(runtime, actions: list[tuple[dict, str]], deadline: Deadline, parallel: int,
                   poll_seconds: float) -> None:
    """Start or restart services (action "start" or "restart"), each as soon as the ones it comes after (`after`,
    among these) are up, at most `parallel` at a time, each waited for until its runtime says it is up (running,
    and its health probe answers). A slow service holds up only what comes after it. The first one that dies or is
    not up in time fails the call. One loop for every runtime; the runtime only knows how to:

    - launch(batch: [(spec, action)]) -> {name: launch}: ask for the starts without waiting, and say what each
      start is to be told by (its own dict, which settle may update);
    - settle({name: (spec, launch)}) -> {names that are up now}, raising the runtime's failure for one that died;
    - too_slow(spec, launch): raise the runtime's failure for one not up by the deadline.
    """
    by_name = {spec["name"]: (spec, action) for spec, action in actions}
    waits_for = {name: {dep.removesuffix(".service") for dep in spec["after"]} & set(by_name)
                 for name, (spec, _) in by_name.items()}
    queue = [spec["name"] for level in start_levels([spec for spec, _ in actions]) for spec in level]
    done: set[str] = set()
    starting: dict[str, dict] = {}
    while queue or starting:
        room = max(1, parallel) - len(starting)
        ready = [name for name in queue if waits_for[name] <= done][:max(0, room)]
        if ready:
            starting.update(runtime.launch([by_name[name] for name in ready]))
            queue = [name for name in queue if name not in ready]
        finished = runtime.settle({name: (by_name[name][0], launch) for name, launch in starting.items()})
        done |= finished
        for name in finished:
            del starting[name]
        if starting and deadline.passed():
            name = next(iter(starting))
            runtime.too_slow(by_name[name][0], starting[name])
        if starting and not finished:
            time.sleep(poll_seconds)


def probe(spec: dict, run_command=None) -> dict:
    """Ask a service once whether it is healthy: {ok, detail}. A service without a probe counts as healthy
    when its process runs, which the runtime decides."""
    check = spec["health"]
    if check is None:
        return {"ok": True, "detail": "no probe"}
    try:
        if check["kind"] == "http":
            request = urllib.request.Request(check["target"], headers=check["headers"])
            try:
                with urllib.request.urlopen(request, timeout=check["timeout"]) as response:  # noqa: S310 - our URL
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            return {"ok": status == check["expect"], "detail": f"{check['target']} answered {status}"}
        if check["kind"] == "tcp":
            host, _, port = check["target"].rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=check["timeout"]):
                return {"ok": True, "detail": f"{check['target']} accepts connections"}
        rc, out, err = run_command(check["target"])
        last = (err or out or "").strip().splitlines()[-1:] or [""]
        return {"ok": rc == 0, "detail": f"{' '.join(check['target'])} exited {rc} {last[0]}".strip()}
    except (OSError, ValueError) as exc:
        return {"ok": False, "detail": f"{check['target']}: {exc}"}


class Deadline:
    """One timeout shared by everything a call waits for."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.end
