"""The SLURM runtime of the services engine: each declaration runs as a job step of the user's allocation.

No root, no systemd: a service is `srun --overlap` on its node inside the job, launched from the node gymfleet
runs on and detached from it (its own session), so it lives as long as the allocation or until it is cancelled.
A step's name carries its mark and its definition: `gymfleet.<component>.<service>.<hash>`. Only steps with this
component's mark, on this node, are ever cancelled.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
import sys
import time

from ansible_collections.gymfleet.cluster.plugins.module_utils.hostlist import hosts_of
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import (
    Deadline,
    definition_hash,
    probe,
    start_in_order,
    start_levels,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import ServiceFailure, file_digest

MARK = "gymfleet"
POLL_SECONDS = 0.3
LOG_LINES = 20
# What a program says when its port is taken (uvicorn, Envoy, Python's socket errors).
PORT_IN_USE = re.compile(r"address already in use|errno 98|EADDRINUSE", re.IGNORECASE)
# Variables the Ansible module itself runs with: not the service's business.
PRIVATE_ENV = re.compile(r"^(_?ANSIBLE_|PYTHONPATH$)")


# Run on the node by check_node: prints the marker file's content, then `held PORT` for each TCP port that cannot
# be bound there on every address (whoever holds it on any of them would make the service's bind fail).
NODE_CHECK = """
import socket, sys
print(open(sys.argv[1]).read())
for port in sys.argv[2:]:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", int(port)))
        except OSError:
            print("held", port)
"""


class SlurmError(Exception):
    """The allocation, a node or the shared directory is not what the services need; the message says the fix."""


def step_name(component: str, service: str, digest: str) -> str:
    return f"{MARK}.{component}.{service}.{digest}"


def parse_step_name(name: str) -> tuple[str, str, str] | None:
    """(component, service, digest) of a step gymfleet launched, None for anyone else's step."""
    parts = name.split(".")
    if len(parts) < 4 or parts[0] != MARK:
        return None
    return parts[1], ".".join(parts[2:-1]), parts[-1]


def squeue_steps_argv(job: str) -> list[str]:
    """squeue listing a job's running steps as id|name|nodes (what parse_steps reads; status asks the same)."""
    return ["squeue", "--steps", "--noheader", f"--jobs={job}", "--format=%i|%j|%N"]


def marked_steps(steps: list[dict], component: str, node: str) -> dict[str, dict]:
    """The steps gymfleet runs for a component on a node: service name -> {id, name, nodes, digest}."""
    mine = {}
    for step in steps:
        marked = parse_step_name(step["name"])
        if marked and marked[0] == component and node in hosts_of(step["nodes"]):
            mine[marked[1]] = {**step, "digest": marked[2]}
    return mine


def port_held(node: str, ports: list) -> str:
    return (f"port {', '.join(str(p) for p in ports) or 'of the service'} on node {node} is held by another process "
            "(another job's?); fix: choose a free port for this service in the inventory, or end what holds it")


def parse_steps(text: str) -> list[dict]:
    """squeue --steps --format=%i|%j|%N lines: [{id, name, nodes}] (a step's nodes as a SLURM host list)."""
    steps = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 3 and fields[0]:
            steps.append({"id": fields[0], "name": fields[1], "nodes": fields[2]})
    return steps


def read_environment_file(path: str) -> dict[str, str]:
    """NAME=value lines, as systemd's EnvironmentFile reads them (comments and blank lines skipped, quotes
    around a whole value removed)."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def port_hint(lines: list[str], node: str, ports: list[int]) -> str:
    """The fix for a step that died because its port is taken on its node, or an empty string."""
    return f"; {port_held(node, ports)}" if any(PORT_IN_USE.search(line) for line in lines) else ""


class SlurmRuntime:
    """Job steps of one allocation on one node, for one component."""

    def __init__(self, module, component: str, job: str, node: str, log_dir: str):
        self.module = module
        self.component = component
        self.job = str(job)
        self.node = node
        self.log_dir = log_dir
        self._digests: dict[str, str] = {}

    def _run(self, argv: list[str], check: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(argv)
        if check and rc != 0:
            raise SlurmError(f"{' '.join(argv)} exited {rc}: {(err or out).strip()}")
        return rc, out, err

    def check_allocation(self) -> None:
        """The job runs and holds this node."""
        rc, out, err = self._run(["squeue", "--noheader", f"--jobs={self.job}", "--format=%T|%N"], check=False)
        state, _, nodes = out.strip().partition("|")
        if rc != 0 or not state:
            raise SlurmError(f"SLURM job {self.job} is not in the queue ({(err or 'gone').strip()}); fix: run inside a "
                             "running allocation (salloc), or let gymfleet deploy ask for one (allocate: in the "
                             "inventory file)")
        if state != "RUNNING":
            raise SlurmError(f"SLURM job {self.job} is {state}, not RUNNING; fix: wait until the allocation is "
                             "granted (squeue -j), then deploy again")
        if self.node not in hosts_of(nodes):
            raise SlurmError(f"node {self.node} is not in SLURM job {self.job} (its nodes: {nodes}); fix: use the "
                             "allocation's nodes (SLURM_JOB_NODELIST) in the inventory")

    def check_node(self, ports: list[int]) -> None:
        """One step on the node, before anything changes there: the directory the services read their code from
        and write their logs to is the one written here (a marker written on this node is read back there), and
        no other process holds the ports of the services about to start."""
        os.makedirs(self.log_dir, exist_ok=True)
        token = secrets.token_hex(8)
        marker = os.path.join(self.log_dir, f".shared-{self.node}")
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write(token)
        # The interpreter this module runs with lives in the user's (shared) home, like gymfleet itself.
        argv = ["srun", f"--jobid={self.job}", "--overlap", "--nodes=1", "--ntasks=1", f"--nodelist={self.node}",
                f"--job-name={MARK}.check", sys.executable, "-c", NODE_CHECK, marker, *[str(p) for p in ports]]
        rc, out, err = self._run(argv, check=False)
        os.unlink(marker)
        lines = out.splitlines()
        if rc != 0 or not lines or lines[0].strip() != token:
            said = [line.strip() for line in (err or out).splitlines() if line.strip() and not line.startswith("srun:")]
            seen = said[-1][:200] if said else "no answer"
            raise SlurmError(f"{self.log_dir} is not shared with node {self.node} (a marker written here is not read "
                             f"back there: {seen}); fix: put the gymfleet directory on the filesystem every node "
                             "mounts (the shared home)")
        held = [line.split()[1] for line in lines[1:] if line.startswith("held ")]
        if held:
            raise SlurmError(port_held(self.node, held))

    def running_steps(self) -> list[dict]:
        _, out, _ = self._run(squeue_steps_argv(self.job), check=False)
        return parse_steps(out)

    def steps(self) -> dict[str, dict]:
        """This component's steps on this node, by service name."""
        return marked_steps(self.running_steps(), self.component, self.node)

    def digest(self, spec: dict) -> str:
        """The definition's hash, read once per service and call: staleness and the launch use the same one."""
        if spec["name"] not in self._digests:
            self._digests[spec["name"]] = definition_hash(spec, {p: file_digest(p)
                                                                 for p in spec["files"] + spec["watch"]})
        return self._digests[spec["name"]]

    def log_path(self, spec: dict) -> str:
        return os.path.join(self.log_dir, f"{self.node}.{spec['name']}.log")

    def log_tail(self, spec: dict, offset: int) -> list[str]:
        try:
            with open(self.log_path(spec), "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-LOG_LINES:]

    def launch(self, batch: list[tuple[dict, str]]) -> dict[str, dict]:
        """Start each service's step (a restart's old step is already cancelled); what each start is told by."""
        return {spec["name"]: self.launch_step(spec, self.digest(spec)) for spec, _ in batch}

    def launch_step(self, spec: dict, digest: str) -> dict:
        """Start the service's step, detached from this process; what its wait needs."""
        if spec["user"] and spec["user"] != _current_user():
            raise SlurmError(f"service {spec['name']}: user {spec['user']} is not the user the allocation belongs to "
                             f"({_current_user()}); fix: leave the user unset for the slurm runtime")
        environment = {k: v for k, v in os.environ.items() if not PRIVATE_ENV.match(k)}
        for path in spec["environment_files"]:
            environment.update(read_environment_file(path))
        environment.update(spec["environment"])
        argv = ["srun", f"--jobid={self.job}", "--overlap", "--nodes=1", "--ntasks=1", f"--nodelist={self.node}",
                f"--job-name={step_name(self.component, spec['name'], digest)}", "--export=ALL", "--kill-on-bad-exit=1"]
        if spec["cpus"]:
            argv.append(f"--cpus-per-task={spec['cpus']}")
        if spec["working_directory"]:
            argv.append(f"--chdir={spec['working_directory']}")
        os.makedirs(self.log_dir, exist_ok=True)
        path = self.log_path(spec)
        offset = os.path.getsize(path) if os.path.exists(path) else 0
        with open(path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - srun with the declaration's own argv
                [*argv, "--", *spec["argv"]], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=environment, start_new_session=True, close_fds=True)
        return {"process": process, "offset": offset, "probe": ""}

    def cancel(self, steps: list[dict], deadline: Deadline) -> None:
        """Cancel steps (SIGTERM, then SIGKILL after the cluster's KillWait) and wait until they are gone."""
        if not steps:
            return
        self._run(["scancel", "--quiet", *[s["id"] for s in steps]], check=False)
        ids = {s["id"] for s in steps}
        while not deadline.passed():
            if not ids & {s["id"] for s in self.running_steps()}:
                return
            time.sleep(POLL_SECONDS)
        raise SlurmError(f"steps {', '.join(sorted(ids))} of job {self.job} did not end in time; fix: scancel them")

    def settle(self, starting: dict[str, tuple[dict, dict]]) -> set[str]:
        """The services whose probe answers now; fails at once on one whose srun ended (the step died)."""
        up = set()
        for name, (spec, launch) in starting.items():
            if launch["process"].poll() is not None:
                self._fail(spec, launch, f"died while starting (srun exited {launch['process'].returncode})")
            answer = probe(spec, self.module.run_command) if spec["health"] else {"ok": True, "detail": ""}
            launch["probe"] = answer["detail"]
            if answer["ok"]:
                up.add(name)
        return up

    def too_slow(self, spec: dict, launch: dict) -> None:
        launch["process"].terminate()
        self._fail(spec, launch, f"not healthy in time ({launch['probe']})")

    def _fail(self, spec: dict, launch: dict, what: str) -> None:
        lines = self.log_tail(spec, launch["offset"])
        tail = ("; last lines of " + self.log_path(spec) + ":\n" + "\n".join(lines)) if lines else ""
        raise ServiceFailure(f"{spec['name']} on node {self.node} {what}{port_hint(lines, self.node, spec['ports'])}"
                             f"{tail}", {"unit": spec["name"], "journal": lines})


def _current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def converge_steps(module, runtime: SlurmRuntime, specs: list[dict]) -> dict:
    """The services module's work with job steps: start what is missing, restart what is stale (unless
    apply_changes is false) or everything (restarted), cancel what is no longer declared (prune) or everything
    (stopped, absent), only check the node (installed), report."""
    state, prune, apply_changes = (module.params[key] for key in ("state", "prune", "apply_changes"))
    deadline = Deadline(module.params["timeout"])
    result = {"changed": False, "written": [], "removed": [], "started": [], "restarted": [], "stopped": [],
              "strays": [], "displaced": []}
    runtime.check_allocation()
    running = runtime.steps()
    declared = {spec["name"] for spec in specs}
    strays = [step for name, step in running.items() if name not in declared]
    digests = {spec["name"]: runtime.digest(spec) for spec in specs}
    if state == "probed":
        result["strays"] = [step["name"] for step in strays]
    elif state == "installed":
        # No unit to write: what a start would check first, so that a deploy can check before it builds anything.
        if not module.check_mode:
            runtime.check_node([port for spec in specs if spec["name"] not in running for port in spec["ports"]])
    elif state in ("stopped", "absent"):
        gone = list(running.values()) if state == "absent" else strays + [running[n] for n in declared if n in running]
        result["stopped"] = [step["name"] for step in gone]
        if not module.check_mode:
            runtime.cancel(gone, deadline)
        running = {} if not module.check_mode else running
    elif state in ("started", "restarted"):
        removed = strays if prune and apply_changes else []
        result["removed"] = [step["name"] for step in removed]
        actions = []
        for level in start_levels(specs):
            for spec in level:
                step = running.get(spec["name"])
                if step is None:
                    actions.append((spec, "start"))
                elif state == "restarted" or (apply_changes and step["digest"] != digests[spec["name"]]):
                    actions.append((spec, "restart"))
        result["started"] = [spec["name"] for spec, action in actions if action == "start"]
        result["restarted"] = [spec["name"] for spec, action in actions if action == "restart"]
        if not module.check_mode:
            # Before anything is cancelled: a step that could not read its files would leave the node without it.
            if actions:
                runtime.check_node([port for spec, action in actions if action == "start" for port in spec["ports"]])
            runtime.cancel(removed + [running[spec["name"]] for spec, action in actions if action == "restart"],
                           deadline)
            # In the declarations' order (`after`), as every runtime starts (services.start_in_order).
            start_in_order(runtime, actions, deadline, module.params.get("parallel", 4), POLL_SECONDS)
            running = runtime.steps()
    result["changed"] = bool(result["removed"] or result["started"] or result["restarted"] or result["stopped"])
    result["services"] = []
    for spec in specs:
        step = running.get(spec["name"])
        up = step is not None
        result["services"].append({
            "name": spec["name"], "unit": step["id"] if up else "", "step": step["name"] if up else "",
            "active_state": "active" if up else "inactive", "sub_state": "running" if up else "dead",
            "main_pid": 0, "restarts": 0, "enabled": spec["enabled"], "ports": spec["ports"],
            "stale": up and step["digest"] != digests[spec["name"]],
            "health": probe(spec, module.run_command) if up and state == "probed" else None,
        })
    return result
