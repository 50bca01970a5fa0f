"""The systemd runtime for service declarations: one unit file per service, marked as gymfleet's.

What it owns it marks: every unit it writes carries `X-Gymfleet-Component=<component>` in [Unit], so
removing what is no longer declared touches only that component's own units. Whether a running process is
stale is read from the host: each start of a unit (by gymfleet, by systemd's own restart, at boot) first
records the hash of the definition it starts from, with the start's invocation ID, under /run. A process
whose record is missing, belongs to another invocation or holds another hash is stale, so a run that stopped
half way leaves nothing a re-run would not restart. (The process's own environment cannot serve: programs
such as redis-server overwrite it with their process title.)
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import time

from ansible_collections.gymfleet.cluster.plugins.module_utils.services import (
    Deadline,
    definition_hash,
    normalize,
    probe,
    start_in_order,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import (
    command_line,
    environment_assignment,
    read_unit,
    render_unit,
    verify,
)

MARK = "X-Gymfleet-Component"
FILES_MARK = "X-Gymfleet-Files"
DEFINITION_MARK = "X-Gymfleet-Definition"
# Log files of a service beside its journal (globs, space-separated), for `gymfleet logs`; set in unit_options.
LOGS_MARK = "X-Gymfleet-Logs"
# The ports the declaration names, which status holds the unit's listening sockets against.
PORTS_MARK = "X-Gymfleet-Ports"
# The declaration's health probe (JSON), so that what is installed can be started, restarted and judged from the
# unit alone, without the role's variables.
HEALTH_MARK = "X-Gymfleet-Health"
# `any` on a unit whose program picks its ports at run time (ps-lite's vans), set in unit_options.
LISTENS_MARK = "X-Gymfleet-Listens"
# Where each start records the definition it started from; tmpfs, so nothing outlives a boot.
RECORD_DIR = "/run/gymfleet/services"
# Units written by gymfleet before the engine carried a mark; the engine adopts them.
LEGACY_HEADER = "# Managed by gymfleet"
PROPERTIES = ("Id", "ActiveState", "SubState", "MainPID", "NRestarts", "NeedDaemonReload", "UnitFileState",
              "ExecMainStatus", "InvocationID")
JOURNAL_LINES = 15
POLL_SECONDS = 0.25
# How long a service without a health probe must stay up after its start to count as started.
SETTLE_SECONDS = 1.0
# How long a failure report waits for the journal to hold systemd's line about the process's exit.
JOURNAL_SETTLE_SECONDS = 3.0
EXIT_LINE = re.compile(r"(Main|Control) process exited|Failed with result|Scheduled restart job")


class ServiceFailure(Exception):
    """A service that did not come up; carries what the operator needs to see."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


def unit_name(spec: dict) -> str:
    return f"{spec['name']}.service"


def _with_suffix(names: list[str]) -> list[str]:
    return [n if "." in n.rsplit("@", 1)[-1] and n.rsplit(".", 1)[-1] in ("service", "target", "socket", "mount")
            else f"{n}.service" for n in names]


def file_digest(path: str) -> str | None:
    """Digest of a file's content, or of a directory tree's paths and contents (bytecode caches, which the
    running program writes, and a checkout's .git left out). None when the path does not exist."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for folder, subfolders, names in os.walk(path):
            subfolders[:] = sorted(d for d in subfolders if d not in ("__pycache__", ".git"))
            for name in sorted(n for n in names if not n.endswith(".pyc")):
                file_path = os.path.join(folder, name)
                digest.update(os.path.relpath(file_path, path).encode() + b"\0")
                digest.update((file_digest(file_path) or "").encode())
        return digest.hexdigest()
    try:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    except OSError:
        return None
    return digest.hexdigest()


def unit_sections(spec: dict, component: str, digest: str) -> dict:
    """The unit file of one declaration, as sections for render_unit."""
    unit = {
        "Description": spec["description"] or f"{component}: {spec['name']}",
        MARK: component,
        DEFINITION_MARK: digest,
        FILES_MARK: " ".join(spec["files"]) or None,
        PORTS_MARK: " ".join(str(port) for port in spec["ports"]) or None,
        HEALTH_MARK: json.dumps(spec["health"], sort_keys=True) if spec["health"] else None,
        "Wants": ["network-online.target"] + _with_suffix(spec["wants"]),
        "After": ["network-online.target"] + _with_suffix(spec["after"]),
        "Requires": _with_suffix(spec["requires"]) or None,
        "PartOf": _with_suffix(spec["part_of"]) or None,
    }
    unit.update(spec["unit_options"])
    environment = [environment_assignment(k, v) for k, v in sorted(spec["environment"].items())]
    # "+": as root whatever User= says, so the record cannot be written or faked by the service itself.
    record = f"{RECORD_DIR}/{unit_name(spec)}"
    script = f'mkdir -p {RECORD_DIR} && echo "{digest} $INVOCATION_ID" > {record}'
    record_start = "+" + command_line(["/bin/sh", "-c", script])
    extra_pre = spec["service_options"].get("ExecStartPre") or []
    service = {
        "Type": spec["type"],
        "User": spec["user"],
        "Group": spec["group"] or spec["user"],
        "WorkingDirectory": spec["working_directory"],
        "Environment": environment or None,
        "EnvironmentFile": spec["environment_files"] or None,
        "ExecStartPre": [record_start] + (extra_pre if isinstance(extra_pre, list) else [extra_pre]),
        "ExecStart": command_line(spec["argv"]),
        "Restart": spec["restart"],
        "RestartSec": spec["restart_sec"],
    }
    service.update({k: v for k, v in spec["service_options"].items() if k != "ExecStartPre"})
    return {"Unit": unit, "Service": service, "Install": {"WantedBy": "multi-user.target"}}


def _declared_health(probe: dict) -> dict:
    """A normalized probe ({kind, target, timeout, ...}) written back as the declaration it came from."""
    declared = {probe["kind"]: probe["target"], "timeout": probe["timeout"]}
    declared.update({key: probe[key] for key in ("expect", "headers") if key in probe})
    return declared


def marks(text: str | None) -> dict:
    """The gymfleet marks in a unit file's text."""
    found = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in (MARK, FILES_MARK, DEFINITION_MARK, PORTS_MARK, HEALTH_MARK, LISTENS_MARK):
            found[key] = value.strip()
    return found


class SystemdRuntime:
    """Converges, probes, stops and removes one component's services on this host."""

    def __init__(self, module, component: str, unit_dir: str = "/etc/systemd/system", adopt: list | None = None):
        self.module = module
        self.component = component
        self.unit_dir = unit_dir
        # Unit names (glob patterns) whose files an earlier gymfleet wrote without a mark: this component's.
        self.adopt = list(adopt or [])

    # -- reading the host ------------------------------------------------------------------------------
    def _run(self, argv: list[str], check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(argv)
        if check and rc != 0:
            raise ServiceFailure(f"{' '.join(argv)} failed: {(err or out).strip()}", {"command": argv})
        return rc, out, err

    def owned_units(self) -> dict[str, str]:
        """Unit name -> file path of every unit in unit_dir that carries this component's mark."""
        owned = {}
        for path in sorted(glob.glob(os.path.join(self.unit_dir, "*.service"))):
            text, name = read_unit(path) or "", os.path.basename(path)
            mark = marks(text).get(MARK)
            legacy = mark is None and text.startswith(LEGACY_HEADER)
            if mark == self.component or (legacy and any(fnmatch.fnmatch(name, p) for p in self.adopt)):
                owned[name] = path
        return owned

    def installed_specs(self) -> list[dict]:
        """The declarations of this component's installed units as far as their files tell: name, order among
        them (After=), health and ports. Enough to start, restart, stop and probe what a deploy installed without
        the role's variables; never enough to write a unit."""
        owned = self.owned_units()
        names = {unit.removesuffix(".service") for unit in owned}
        specs = []
        for unit, path in owned.items():
            text = read_unit(path) or ""
            found = marks(text)
            after = [word.removesuffix(".service") for line in text.splitlines() if line.startswith("After=")
                     for word in line.split("=", 1)[1].split()]
            spec = normalize({"name": unit.removesuffix(".service"), "argv": ["/bin/true"],
                              "after": [name for name in after if name in names],
                              "health": _declared_health(json.loads(found[HEALTH_MARK]))
                              if found.get(HEALTH_MARK) else None,
                              "ports": [int(p) for p in found.get(PORTS_MARK, "").split() if p.isdigit()]})
            specs.append(spec)
        return specs

    def show(self, units: list[str]) -> dict[str, dict]:
        """systemctl show for many units in one call."""
        if not units:
            return {}
        _, out, _ = self._run(["systemctl", "show", "--property=" + ",".join(PROPERTIES), "--", *units])
        states: dict[str, dict] = {}
        blocks = [b for b in out.strip().split("\n\n") if b.strip()]
        for unit, block in zip(units, blocks, strict=True):
            props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            states[unit] = {
                "active_state": props.get("ActiveState", ""),
                "sub_state": props.get("SubState", ""),
                "main_pid": int(props.get("MainPID") or 0),
                "restarts": int(props.get("NRestarts") or 0),
                "need_reload": props.get("NeedDaemonReload") == "yes",
                "enabled": props.get("UnitFileState") in ("enabled", "enabled-runtime", "alias"),
                "exit_status": props.get("ExecMainStatus", ""),
                # New with every run: a start has begun once it differs from the one before the request.
                "invocation": props.get("InvocationID", ""),
            }
        return states

    @staticmethod
    def running_hash(unit: str, state: dict) -> str | None:
        """The definition hash the unit's current run started from, or None when nothing vouches for it."""
        try:
            with open(f"{RECORD_DIR}/{unit}") as handle:
                digest, _, invocation = handle.read().strip().partition(" ")
        except OSError:
            return None
        return digest if invocation and invocation == state.get("invocation") else None

    def journal(self, unit: str, since: float | None) -> list[str]:
        # With --since, journalctl's -n keeps the first lines after it, not the last: the tail is cut here.
        argv = ["journalctl", "--no-pager", "-o", "cat", "-u", unit]
        argv += ["--since", f"@{int(since) - 1}"] if since else ["-n", str(JOURNAL_LINES)]
        rc, out, _ = self._run(argv, check=False)
        return out.strip().splitlines()[-JOURNAL_LINES:] if rc == 0 else []

    # -- planning --------------------------------------------------------------------------------------
    def plan(self, specs: list[dict], prune: bool) -> dict:
        """What converging would do: files to write, units to remove, and every unit's state and staleness."""
        owned = self.owned_units()
        plan = {"write": [], "remove": [], "units": {}, "hashes": {}, "diff": []}
        for spec in specs:
            unit = unit_name(spec)
            path = os.path.join(self.unit_dir, unit)
            before = read_unit(path)
            if before is not None and unit not in owned:
                other = marks(before).get(MARK)
                if other or not before.startswith(LEGACY_HEADER):
                    owner = f"gymfleet's component {other}" if other else "someone else (no gymfleet mark)"
                    raise ServiceFailure(
                        f"{path} belongs to {owner}, not {self.component}; fix: rename the service or remove that "
                        f"unit by hand if it is stale", {"unit": unit})
            digest = definition_hash(spec, {p: file_digest(p) for p in spec["files"] + spec["watch"]})
            plan["hashes"][unit] = digest
            after = render_unit(unit_sections(spec, self.component, digest),
                                f"Managed by gymfleet (component {self.component}); local changes are overwritten.")
            if after != before:
                plan["write"].append({"unit": unit, "path": path, "content": after})
                plan["diff"].append({"before": before or "", "after": after, "before_header": path,
                                     "after_header": path})
        declared = {unit_name(s) for s in specs}
        if prune:
            plan["remove"] = [{"unit": u, "path": p} for u, p in owned.items() if u not in declared]
        units = [unit_name(s) for s in specs] + [r["unit"] for r in plan["remove"]]
        plan["units"] = self.show(units)
        for removal in plan["remove"]:
            text = read_unit(removal["path"]) or ""
            removal["files"] = marks(text).get(FILES_MARK, "").split()
            plan["diff"].append({"before": text, "after": "", "before_header": removal["path"],
                                 "after_header": removal["path"]})
        return plan

    def is_stale(self, unit: str, state: dict, digest: str) -> bool:
        if state["active_state"] not in ("active", "reloading", "activating"):
            return False
        return self.running_hash(unit, state) != digest

    # -- changing the host -----------------------------------------------------------------------------
    def write(self, plan: dict) -> None:
        # Units of one call may depend on each other (Requires=): each is verified beside the others.
        together = {item["unit"]: item["content"] for item in plan["write"]}
        for item in plan["write"]:
            problems = verify(self.module.run_command, item["unit"], item["content"], siblings=together)
            if problems:
                raise ServiceFailure(f"{item['unit']}: systemd-analyze rejects it: {'; '.join(problems)}",
                                     {"unit": item["unit"]})
        for item in plan["write"]:
            tmp = f"{item['path']}.gymfleet-tmp"
            with open(tmp, "w") as handle:
                handle.write(item["content"])
            os.chmod(tmp, 0o644)
            self.module.atomic_move(tmp, item["path"])

    def remove(self, removals: list[dict]) -> None:
        units = [r["unit"] for r in removals]
        if not units:
            return
        # A template (name@.service) has no run of its own to stop; its instances are units of their own.
        running = [u for u in units if not u.endswith("@.service")]
        if running:
            self._run(["systemctl", "stop", "--", *running])
        self._run(["systemctl", "disable", "--quiet", "--", *units], check=False)
        for removal in removals:
            for path in [removal["path"], *removal["files"]]:
                if os.path.lexists(path):
                    os.remove(path)
        if running:
            self._run(["systemctl", "reset-failed", "--", *running], check=False)

    def daemon_reload(self) -> None:
        self._run(["systemctl", "daemon-reload"])

    def set_enabled(self, specs: list[dict], states: dict) -> list[str]:
        enable = [unit_name(s) for s in specs if s["enabled"] and not states[unit_name(s)]["enabled"]]
        disable = [unit_name(s) for s in specs if not s["enabled"] and states[unit_name(s)]["enabled"]]
        if enable and not self.module.check_mode:
            self._run(["systemctl", "enable", "--quiet", "--", *enable])
        if disable and not self.module.check_mode:
            self._run(["systemctl", "disable", "--quiet", "--", *disable])
        return enable + disable

    def start(self, actions: list[tuple[dict, str]], deadline: Deadline, parallel: int) -> None:
        """Start or restart services in order, as every runtime does (services.start_in_order)."""
        start_in_order(self, actions, deadline, parallel, POLL_SECONDS)

    def launch(self, batch: list[tuple[dict, str]]) -> dict[str, dict]:
        launched = self._launch([unit_name(spec) for spec, _ in batch],
                                {unit_name(spec): action for spec, action in batch})
        return {spec["name"]: launched[unit_name(spec)] for spec, _ in batch}

    def settle(self, starting: dict[str, tuple[dict, dict]]) -> set[str]:
        by_unit = {unit_name(spec): spec for spec, _ in starting.values()}
        up = self._settle({unit_name(spec): launch for spec, launch in starting.values()}, by_unit)
        return {by_unit[unit]["name"] for unit in up}

    def too_slow(self, spec: dict, launch: dict) -> None:
        unit = unit_name(spec)
        self._fail(unit, self.show([unit])[unit], launch["since"],
                   f"not healthy in time ({launch['probe'] or 'its process is not up yet'})")

    def _launch(self, units: list[str], wanted: dict) -> dict[str, dict]:
        """Ask systemd to start or restart units without waiting for the jobs; what each start must be told by."""
        since = time.time()
        before = self.show(units)
        # A unit to start that already runs was pulled in by another one started before it (Wants=): nothing
        # to ask, and no new run to wait for. Every other one must show a run that began after the request.
        already = {u for u in units if wanted[u] == "start" and before[u]["active_state"] in ("active", "activating")}
        for verb in ("restart", "start"):
            chosen = [u for u in units if wanted[u] == verb and u not in already]
            if chosen:
                # Without waiting for the jobs: a start job of a service that keeps dying waits through every
                # automatic restart, so the death would only show at the timeout.
                self._run(["systemctl", verb, "--no-block", "--", *chosen])
        return {unit: {"since": since, "invocation": before[unit]["invocation"], "already": unit in already,
                       "floor": before[unit]["restarts"], "probe": ""} for unit in units}

    def _settle(self, starting: dict[str, dict], by_unit: dict[str, dict]) -> set[str]:
        """The units among those starting that are up now; fails the call on the first that died."""
        if not starting:
            return set()
        states = self.show(list(starting))
        up = set()
        for unit, launch in starting.items():
            spec, state = by_unit[unit], states[unit]
            if not launch["already"] and state["invocation"] == launch["invocation"]:
                continue  # the job has not begun (it may wait for a dependency): the old run still shows
            # NRestarts goes back to 0 on a start from inactive but not on one from auto-restart: count from the
            # lowest value seen since the request.
            launch["floor"] = min(launch["floor"], state["restarts"])
            restarts = state["restarts"] - launch["floor"]
            if state["active_state"] in ("failed", "inactive") or restarts > spec["tolerated_restarts"] \
                    or (state["sub_state"] == "auto-restart" and not spec["tolerated_restarts"]):
                self._fail(unit, state, launch["since"], "died while starting", died=True)
            if state["active_state"] != "active":
                continue
            if spec["health"] is None:
                # Without a probe, a process that stays up for a moment counts as started; a oneshot that is
                # active has already run to its end.
                if spec["type"] == "oneshot" or time.time() - launch["since"] >= SETTLE_SECONDS:
                    up.add(unit)
                continue
            answer = probe(spec, self.module.run_command)
            launch["probe"] = answer["detail"]
            if answer["ok"]:
                up.add(unit)
        return up

    def _fail(self, unit: str, state: dict, since: float, what: str, died: bool = False) -> None:
        lines = self.journal(unit, since)
        # A process's last words reach the journal through its output stream, after systemd has seen it die:
        # wait (briefly) for systemd's own line about the exit, which comes after them.
        deadline = time.monotonic() + JOURNAL_SETTLE_SECONDS
        while died and not any(EXIT_LINE.search(line) for line in lines) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            lines = self.journal(unit, since)
        status = f"{state['active_state']}/{state['sub_state']}"
        if state["exit_status"] not in ("", "0"):
            status += f", exit status {state['exit_status']}"
        tail = ("; last journal lines:\n" + "\n".join(lines)) if lines else "; the journal has no lines for it"
        raise ServiceFailure(f"{unit} {what} ({status}){tail}", {"unit": unit, "journal": lines})

    def displace(self, units: list[str]) -> list[str]:
        """Keep units that are not gymfleet's (a distribution's default instance) from running beside ours:
        stop and disable them, and forget a failure of theirs; their files and data stay."""
        names = [u if "." in u else f"{u}.service" for u in units]
        states = self.show(names)
        running = [u for u in names if states[u]["active_state"] in ("active", "activating", "reloading")]
        enabled = [u for u in names if states[u]["enabled"]]
        failed = [u for u in names if states[u]["active_state"] == "failed"]
        if not self.module.check_mode:
            if running or enabled:
                self._run(["systemctl", "disable", "--now", "--quiet", "--", *sorted(set(running + enabled))])
            if running or failed:
                self._run(["systemctl", "reset-failed", "--", *sorted(set(running + failed))], check=False)
        return [u for u in names if u in running or u in enabled or u in failed]

    def stop(self, units: list[str]) -> list[str]:
        """Stop the units that run, in one systemd transaction: every `after` of a declaration is an After= of its
        unit, so systemd stops them in the reverse of their start order by itself, and units that do not wait for
        each other stop at the same time."""
        states = self.show(units)
        running = [u for u in units if states[u]["active_state"] in ("active", "activating", "reloading")]
        if running and not self.module.check_mode:
            self._run(["systemctl", "stop", "--", *running])
            # A stop that was asked for is no failure, whatever status the program ends with on SIGTERM.
            self._run(["systemctl", "reset-failed", "--", *running], check=False)
        return running
