"""Every run kept, to be looked at again without running it again.

`~/.cache/gymfleet/runs/<id>/` (mode 0700) holds `request.json` (what was asked: playbook, inventory, limit, tags,
the names of the extra variables but never their values), `events.jsonl` (ansible-runner's events as they came),
`stdout.txt` (Ansible's own output) and `result.json` (the run's result, as `--json` prints it). The newest
GYMFLEET_KEEP_RUNS runs are kept (50 when unset); older ones are removed when a run starts.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.events import Failure, HostOutcome, RunResult

DEFAULT_KEEP = 50


def runs_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet" / "runs"


def keep_count() -> int:
    text = os.environ.get("GYMFLEET_KEEP_RUNS", str(DEFAULT_KEEP))
    if not text.isdigit() or int(text) < 1:
        raise GymfleetError(f"GYMFLEET_KEEP_RUNS={text}: not a whole number of runs to keep; fix: set it to 1 or more")
    return int(text)


def _write(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


class Recorder:
    """Writes one run's record while it runs; `finish` adds the result and Ansible's output."""

    def __init__(self, request, root: Path | None = None):
        self.root = root or runs_dir()
        self.keep = keep_count()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Sortable by time, and unique even for two runs started in the same second.
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{request.playbook.replace('_', '-')}-{secrets.token_hex(2)}"
        self.path = self.root / self.run_id
        self.path.mkdir(mode=0o700)
        variables = set(request.extravars)
        for source in request.extravar_sources:
            variables |= set(source) if isinstance(source, dict) else set()
        files = [str(source) for source in request.extravar_sources if isinstance(source, Path)]
        _write(self.path / "request.json", json.dumps({
            "run_id": self.run_id, "playbook": request.playbook, "inventory": request.inventory,
            "limit": request.limit, "tags": request.tags, "skip_tags": request.skip_tags, "check": request.check,
            "diff": request.diff, "extra_variables": sorted(variables), "extra_variable_files": files,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
        }, indent=2))
        descriptor = os.open(self.path / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._events = os.fdopen(descriptor, "w")
        prune(self.root, self.keep)

    def event(self, event: dict) -> None:
        self._events.write(json.dumps(event, default=str) + "\n")

    def finish(self, result: RunResult, stdout: str) -> None:
        self._events.close()
        _write(self.path / "stdout.txt", stdout)
        _write(self.path / "result.json", json.dumps({"run_id": self.run_id, **result.to_dict()}, indent=2))


def prune(root: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` runs; returns the ids removed."""
    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name) if root.is_dir() else []
    removed = runs[:-keep] if len(runs) > keep else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return [path.name for path in removed]


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def list_runs(root: Path | None = None) -> list[dict]:
    """Newest first: each run's request, with its result when it has one (none: still running, or killed)."""
    root = root or runs_dir()
    runs = []
    for path in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True) if root.is_dir() else []:
        request = _read(path / "request.json")
        if request is not None:
            runs.append({**request, "result": _read(path / "result.json")})
    return runs


def find_run(key: str, root: Path | None = None) -> Path:
    """A run by its id, a unique start of it, or `last`."""
    root = root or runs_dir()
    ids = [run["run_id"] for run in list_runs(root)]
    if not ids:
        raise GymfleetError(f"no run is recorded in {root}; fix: run a playbook first (every run is kept there)")
    matches = ids[:1] if key == "last" else [run_id for run_id in ids if run_id.startswith(key)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs ({', '.join(matches[:3])}...)"
        raise GymfleetError(f"{what} with an id starting {key!r}; fix: give one of `gymfleet runs` (newest: {ids[0]}) "
                            "or `last`")
    return root / matches[0]


def result_of(path: Path) -> RunResult | None:
    """The RunResult a finished run recorded, read back."""
    data = _read(path / "result.json")
    if data is None:
        return None
    hosts = {name: HostOutcome(host=name, **{k: v for k, v in host.items() if k != "status"})
             for name, host in data["hosts"].items()}
    return RunResult(playbook=data["playbook"], status=data["status"], rc=data["rc"], check=data["check"],
                     elapsed=data["elapsed_seconds"], tasks=data["tasks"], hosts=hosts,
                     failures=[Failure(**failure) for failure in data["failures"]], message=data["message"],
                     run_id=data["run_id"])
