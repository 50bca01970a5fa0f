"""What a playbook run did, folded from ansible-runner's events (the dicts its event_handler receives).

RunState knows nothing of terminals or runner processes: it is fed events one by one, which is how the
live display and the typed results share one reading of a run, and how tests replay recorded runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

# Results of one host for one task, as ansible-runner names them.
_RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}
_TASK_START_EVENTS = {"playbook_on_task_start", "playbook_on_handler_task_start"}


@dataclass
class HostOutcome:
    """One host's counts over the whole run, as in Ansible's PLAY RECAP."""

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    current_task: str | None = None

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"


@dataclass
class Failure:
    """A task that failed on a host (not one whose errors the playbook ignores), or a host out of reach."""

    host: str
    task: str
    play: str
    message: str
    unreachable: bool = False

    def line(self) -> str:
        what = "UNREACHABLE" if self.unreachable else "FAILED"
        return f"{what} {self.host} | {self.task} | {self.message}"


def failure_message(res: dict) -> str:
    """The module's own message on one line: msg, else stderr, else the exception's last line."""
    message = res.get("msg") or res.get("stderr") or res.get("reason") or ""
    if not message and res.get("exception"):
        message = str(res["exception"]).strip().splitlines()[-1]
    if not message and isinstance(res.get("results"), list):
        # A loop: the first item that failed says why.
        for item in res["results"]:
            if isinstance(item, dict) and item.get("failed"):
                label = item.get("_ansible_item_label", item.get("item"))
                return f"item {label}: {failure_message(item)}"
    if not isinstance(message, str):
        message = str(message)
    stderr = res.get("stderr") if isinstance(res.get("stderr"), str) else ""
    if message == "non-zero return code" and stderr.strip():
        # A command's own message says only that it failed; its last line of stderr says why.
        message = f"{message} {res.get('rc')}: {stderr.strip().splitlines()[-1]}"
    said = " ".join(str(res.get(key) or "").strip() for key in ("module_stderr", "module_stdout")).strip()
    if said and ("Module result deserialization failed" in message or "MODULE FAILURE" in message):
        # The module gave no result at all: what the connection or the interpreter said instead says why (a
        # host frozen or gone mid-run, a Python that is missing).
        message = f"{message}: {said.splitlines()[-1]}"
    return " ".join(message.split()) or "failed without a message"


@dataclass
class RunState:
    """Everything known about a run so far. `feed` takes runner events in the order they arrive."""

    playbook: str = ""
    expected_tasks: int | None = None  # an estimate (previous run, or --list-tasks); grows if exceeded
    play: str = ""
    tasks_started: int = 0
    finished: bool = False
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    current_task: str = ""
    facts: dict[str, dict] = field(default_factory=dict)  # host -> facts set by set_fact, merged in order

    @property
    def tasks_done(self) -> int:
        # A task is done once the next one starts, or the run ends.
        return self.tasks_started if self.finished else max(self.tasks_started - 1, 0)

    @property
    def tasks_total(self) -> int:
        if self.finished:
            return self.tasks_started
        return max(self.expected_tasks or 0, self.tasks_started)

    def elapsed(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.started_at

    def host(self, name: str) -> HostOutcome:
        if name not in self.hosts:
            self.hosts[name] = HostOutcome(name)
        return self.hosts[name]

    def feed(self, event: dict) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_start":
            self.playbook = data.get("playbook", self.playbook)
        elif kind == "playbook_on_play_start":
            self.play = data.get("play", data.get("name", ""))
        elif kind in _TASK_START_EVENTS:
            self.tasks_started += 1
            self.current_task = data.get("task", data.get("name", ""))
        elif kind == "runner_on_start":
            self.host(data["host"]).current_task = data.get("task", "")
        elif kind in _RESULT_EVENTS and data.get("host"):
            self._result(kind, data)
        elif kind == "playbook_on_stats":
            self._stats(data)

    def _result(self, kind: str, data: dict) -> None:
        host = self.host(data["host"])
        host.current_task = None
        res = data.get("res") or {}
        if kind == "runner_on_ok":
            host.changed += bool(res.get("changed"))
            host.ok += not res.get("changed")
            if isinstance(res.get("ansible_facts"), dict):
                self.facts.setdefault(data["host"], {}).update(res["ansible_facts"])
        elif kind == "runner_on_skipped":
            host.skipped += 1
        elif kind == "runner_on_failed" and data.get("ignore_errors"):
            host.ignored += 1
        else:
            unreachable = kind == "runner_on_unreachable"
            if unreachable:
                host.unreachable += 1
            else:
                host.failed += 1
            self.failures.append(Failure(
                host=data["host"], task=data.get("task", ""), play=data.get("play", ""),
                message=failure_message(res), unreachable=unreachable,
            ))

    def _stats(self, data: dict) -> None:
        """The recap is the authority on counts; it also names hosts that never ran a task."""
        self.finished = True
        self.current_task = ""
        # A failure that a block's rescue handled is reported like any other when it happens; the recap
        # counts it as rescued. A host's last `failures` failures are the ones that stood.
        standing: set[int] = set()
        for name in dict.fromkeys(failure.host for failure in self.failures):
            mine = [failure for failure in self.failures if failure.host == name]
            failed = [failure for failure in mine if not failure.unreachable]
            keep = int((data.get("failures") or {}).get(name, len(failed)))
            standing.update(id(failure) for failure in (failed[len(failed) - keep:] if keep else []))
            standing.update(id(failure) for failure in mine if failure.unreachable)
        self.failures = [failure for failure in self.failures if id(failure) in standing]
        columns = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
                   "skipped": "skipped", "rescued": "rescued", "ignored": "ignored"}
        names = set(data.get("processed") or {})
        for counts in (data.get(column) or {} for column in columns):
            names.update(counts)
        for name in names:
            host = self.host(name)
            host.current_task = None
            for column, attribute in columns.items():
                setattr(host, attribute, int((data.get(column) or {}).get(name, 0)))
            # The recap counts changed results inside ok; our ok means "ok and unchanged".
            host.ok = max(host.ok - host.changed, 0)

    def hosts_by_status(self) -> dict[str, int]:
        counts = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0}
        for host in self.hosts.values():
            counts[host.status] += 1
        return counts


@dataclass
class RunResult:
    """The outcome of one playbook run, as returned by the Python API and printed by `--json`."""

    playbook: str
    status: str  # successful, failed, canceled, error
    rc: int
    check: bool
    elapsed: float
    tasks: int
    hosts: dict[str, HostOutcome]
    failures: list[Failure]
    message: str = ""  # why a run that did not even start failed, or how it was cancelled
    run_id: str = ""  # its record in ~/.cache/gymfleet/runs/ (gymfleet runs show RUN_ID)

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    @property
    def changed(self) -> int:
        return sum(host.changed for host in self.hosts.values())

    def to_dict(self) -> dict:
        return {
            "playbook": self.playbook,
            "status": self.status,
            "ok": self.ok,
            "rc": self.rc,
            "check": self.check,
            "elapsed_seconds": round(self.elapsed, 3),
            "tasks": self.tasks,
            "changed": self.changed,
            "hosts": {name: {k: v for k, v in asdict(host).items() if k not in ("host", "current_task")}
                      | {"status": host.status} for name, host in sorted(self.hosts.items())},
            "failures": [asdict(failure) for failure in self.failures],
            "message": self.message,
            "run_id": self.run_id,
        }
