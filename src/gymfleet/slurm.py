"""The SLURM allocation a `*.slurm.yml` inventory runs in, when gymfleet runs outside one.

Inside `salloc` (SLURM_JOB_ID set) there is nothing to do: the inventory plugin reads the allocation's node list.
Outside, `gymfleet deploy` asks SLURM for the nodes the file's `allocate:` describes (`salloc --no-shell`, the
runbook's N+1 nodes), remembers the job under ~/.cache/gymfleet/slurm, and every later command on that inventory
runs in it; `gymfleet stop` gives it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from gymfleet.errors import GymfleetError

PLUGIN = "gymfleet.cluster.slurm_allocation"
GRANTED = re.compile(r"Granted job allocation (\d+)")


def _state_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet" / "slurm"


def allocation_inventory(sources: list[str]) -> tuple[Path, dict] | None:
    """The inventory file of the slurm_allocation plugin among the sources, with its settings."""
    for source in sources:
        path = Path(source)
        if path.is_file() and path.name.endswith((".slurm.yml", ".slurm.yaml")):
            try:
                config = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError:
                return None  # the inventory plugin names the line
            if isinstance(config, dict) and config.get("plugin") == PLUGIN:
                return path.resolve(), config
    return None


def record_path(inventory: Path) -> Path:
    return _state_dir() / (hashlib.sha256(str(inventory).encode()).hexdigest()[:16] + ".json")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=None, check=False)
    except FileNotFoundError:
        raise GymfleetError(f"{argv[0]} is not on PATH; fix: run gymfleet where SLURM's commands are (the login "
                            "node or a node of the cluster)") from None


def job_state(job: str) -> tuple[str, str]:
    """(state, node list) of a job in the queue, ("", "") when it is gone."""
    done = _run(["squeue", "--noheader", f"--jobs={job}", "--format=%T|%N"])
    state, _, nodes = done.stdout.strip().partition("|")
    return (state, nodes) if done.returncode == 0 else ("", "")


def salloc_argv(config: dict, name: str) -> list[str]:
    """salloc for the inventory's allocate: settings, with the runbook's N+1 nodes."""
    settings = config.get("allocate") or {}
    if not isinstance(settings, dict):
        raise GymfleetError(f"inventory {name}: allocate must be a mapping (cpus_per_node, time, partition); fix: "
                            "correct it")
    workers = config.get("workers")
    if not isinstance(workers, int) or workers < 1:
        raise GymfleetError(f"inventory {name}: allocate needs workers (how many nodes run environment servers); "
                            "fix: set workers: N, and gymfleet asks for N+1 nodes")
    unknown = set(settings) - {"cpus_per_node", "time", "partition"}
    if unknown:
        raise GymfleetError(f"inventory {name}: allocate has unknown keys {sorted(unknown)}; fix: use cpus_per_node, "
                            "time and partition")
    nodes = workers + int(config.get("envoy_nodes", 1))
    argv = ["salloc", "--no-shell", f"--nodes={nodes}", f"--job-name=gymfleet-{name.split('.')[0]}",
            f"--time={settings.get('time') or '1:00:00'}"]
    if settings.get("cpus_per_node"):
        argv.append(f"--cpus-per-task={int(settings['cpus_per_node'])}")
    if settings.get("partition"):
        argv.append(f"--partition={settings['partition']}")
    return argv


def enter(sources: list[str], may_allocate: bool, log) -> dict[str, str]:
    """The environment a run on a SLURM inventory needs: nothing inside an allocation, else the recorded job's,
    else (deploy, with allocate:) a new allocation's. A run that can have none fails with the fix."""
    found = allocation_inventory(sources)
    if found is None or os.environ.get("SLURM_JOB_ID"):
        return {}
    inventory, config = found
    if config.get("runtime", "slurm") != "slurm" or config.get("nodelist"):
        return {}
    record = record_path(inventory)
    if record.exists():
        job = json.loads(record.read_text())["job"]
        state, nodes = job_state(job)
        if state == "RUNNING":
            return {"SLURM_JOB_ID": job, "SLURM_JOB_NODELIST": nodes}
        record.unlink()
        log(f"allocation {job} of {inventory.name} has ended ({state or 'gone from the queue'})")
    if not may_allocate or "allocate" not in config:
        raise GymfleetError(
            f"inventory {inventory.name}: gymfleet runs outside any SLURM allocation and none is asked for; fix: run "
            "it inside salloc (salloc --nodes=N+1 ...), or add allocate: to the file and run gymfleet deploy, which "
            "asks SLURM for the nodes")
    argv = salloc_argv(config, inventory.name)
    log(f"asking SLURM for an allocation: {' '.join(argv)}")
    done = _run(argv)
    granted = GRANTED.search(done.stderr + done.stdout)
    if done.returncode != 0 or not granted:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no answer"]
        raise GymfleetError(f"inventory {inventory.name}: salloc refused the allocation: {reason[0]}; fix: change "
                            "allocate: (partition, time, cpus_per_node) or workers to what the cluster can give")
    job = granted.group(1)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"job": job, "inventory": str(inventory)}))
    state, nodes = job_state(job)
    log(f"allocation {job} granted on {nodes}")
    return {"SLURM_JOB_ID": job, "SLURM_JOB_NODELIST": nodes}


def leave(sources: list[str], log) -> None:
    """Give back the allocation gymfleet asked for on this inventory (after a stop)."""
    found = allocation_inventory(sources)
    if found is None:
        return
    record = record_path(found[0])
    if not record.exists():
        return
    job = json.loads(record.read_text())["job"]
    done = _run(["scancel", job])
    if done.returncode != 0:
        raise GymfleetError(f"scancel {job} failed: {done.stderr.strip()}; fix: scancel {job} by hand")
    record.unlink()
    log(f"allocation {job} given back")
