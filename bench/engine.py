"""Issues 15 and 38's figures: status and no-op deploys (time, and calls that reach a host) on the demo stack and on
the base roles at two sizes, beside one ad-hoc task on the same hosts.

Usage: python bench/engine.py [--runs N] [--baseline REF] [--big N] [--skip-big] [--only demo|base] [--keep]

Every measure runs side by side with the floor (one ad-hoc Ansible task on the same hosts) and, with --baseline
REF, with the playbooks of another commit (a git worktree of REF, run by this CLI through GYMFLEET_HOME) on a lab
of the same size of its own (two versions managing the same hosts would undo each other's work). Both labs are
up at once and the runs alternate between the trees, so a busy machine weighs on both alike. Medians of N runs
(default 3).
  demo cold             lab up from the image, stack laid out, the whole stack deployed (one run)
  demo no-op deploy     the same deploy again: nothing to start, nothing may change
  demo status           `gymfleet status --json`
  ports answering a non-member
                        every TCP port a demo host listens on beyond loopback, tried from a container on the lab's
                        network that is no member, after the cold deploy and again after `deploy -t redis` adding an
                        instance while a program holds a port of its own; SSH aside
  remote calls per host the tasks of that no-op deploy that reach a host (a module, or an action plugin that runs
                        one), per host, from the run's kept events; controller-only tasks (assert, set_fact,
                        include_*, debug, validate_argument_spec) are left out
  base no-op deploy     firewall, python_env and Redis only (the lab's default inventory), 3 and --big hosts
  base status           the same labs' status
  controller CPU        CPU seconds of ansible-playbook and its forks per no-op deploy (the remote Pythons run in the
                        lab's containers, not under it), 24 / 3 hosts: how gymfleet's own cost grows with hosts
24 lab hosts need fs.inotify.max_user_instances above 128 (about 22 systemd hosts exhaust it); the script
raises it to 1024 for the run when it is lower, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], home: Path | None = None, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str((home or ROOT) / "ansible.cfg")}
    if home:
        env["GYMFLEET_HOME"] = str(home)
    started, cpu = time.monotonic(), children_cpu()
    proc = subprocess.run(command, cwd=home or ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    proc.cpu = children_cpu() - cpu  # the controller's CPU seconds: the command and every process it waited for
    if check and proc.returncode not in (0, 1):
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{' '.join(command)} failed with {proc.returncode}")
    return seconds, proc


# Tasks that never reach a host: Ansible's controller-side actions and gymfleet's validate_role_vars.
CONTROLLER_ONLY = {"assert", "set_fact", "debug", "fail", "include_role", "include_tasks", "import_role",
                   "import_tasks", "meta", "validate_argument_spec", "add_host", "group_by", "validate_role_vars"}


def reached_host(data: dict) -> bool:
    """Whether a task's event is a call on its host: not a controller-side action, not a call the engine queued
    (services' defer), not a task delegated to the controller."""
    action = (data.get("task_action") or data.get("resolved_action") or "").rsplit(".", 1)[-1]
    result = data.get("res") or {}
    delegated = (result.get("_ansible_delegated_vars") or {}).get("ansible_connection") == "local"
    return action not in CONTROLLER_ONLY and not result.get("deferred") and not delegated


def remote_calls(run_dir: Path) -> float:
    """Median over hosts of the tasks that reached the host in a kept run (events.jsonl)."""
    calls: dict[str, int] = {}
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        data = event.get("event_data", {})
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("host"):
            calls[data["host"]] = calls.get(data["host"], 0) + reached_host(data)
    return median(list(calls.values())) if calls else 0


def newest_run(kind: str) -> Path:
    runs = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet" / "runs"
    return max(runs.glob(f"*-{kind}-*"), key=lambda path: path.name)


def changes(output: str) -> int | None:
    found = re.search(r"\w+: \w+ in [\d:.]+; (\d+) tasks, (\d+) changes", output)
    return int(found.group(2)) if found else None


def tasks_run(output: str) -> int | None:
    found = re.search(r"\w+: \w+ in [\d:.]+; (\d+) tasks, (\d+) changes", output)
    return int(found.group(1)) if found else None


# Ansible's own cost of a task that does nothing on the controller, on every host of a play: what bounds a playbook
# of many tasks however little each does.
TRIVIAL_TASKS = 50


class Lab:
    def __init__(self, name: str, nodes: int, stack: bool):
        self.name, self.nodes, self.stack = name, nodes, stack
        self.inventory = f"inventories/lab/{name}"

    def up(self) -> None:
        run([str(BIN / "gymfleet"), "lab", "down", "--name", self.name], check=False)
        # The bare image: a cold deploy installs its Debian packages as on a fresh machine.
        run([str(BIN / "gymfleet"), "lab", "up", "--bare", "--name", self.name, "--nodes", str(self.nodes)])
        if self.stack:
            run([str(BIN / "gymfleet"), "lab", "stack", "--name", self.name])

    def down(self) -> None:
        run([str(BIN / "gymfleet"), "lab", "down", "--name", self.name], check=False)

    def deploy(self, home: Path | None = None) -> tuple[float, int | None, float, float]:
        seconds, proc = run([str(BIN / "gymfleet"), "deploy", "--plain", "-i", str(ROOT / self.inventory)], home)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"deploy on {self.name} failed")
        return (seconds, changes(proc.stdout + proc.stderr), proc.cpu, remote_calls(newest_run("deploy")),
                tasks_run(proc.stdout + proc.stderr))

    def status(self, home: Path | None = None) -> tuple[float, bool]:
        seconds, proc = run([str(BIN / "gymfleet"), "status", "--json", "-i", str(ROOT / self.inventory)], home)
        healthy = bool(proc.stdout.strip()) and json.loads(proc.stdout).get("healthy", False)
        return seconds, healthy

    def nodes_names(self) -> list[str]:
        return [f"{self.name}-node{index}" for index in range(1, self.nodes + 1)]

    def exposed(self) -> list[str]:
        """host:port of every TCP port beyond loopback that answers a container on the lab's network that is no
        member, SSH aside."""
        from gymfleet.lab.hosts import network_name

        probe = ("import socket,sys\nfor p in sys.argv[2:]:\n try:\n  socket.create_connection((sys.argv[1], "
                 "int(p)), 1).close(); print(p)\n except OSError: pass")
        answered = []
        for node in self.nodes_names():
            listening = subprocess.run(["docker", "exec", node, "ss", "-ltnH"], capture_output=True, text=True,
                                       check=True).stdout.split("\n")
            local = [line.split()[3] for line in listening if line.strip()]
            ports = sorted({address.rsplit(":", 1)[1] for address in local
                            if not address.startswith(("127.", "[::1]"))} - {"22"}, key=int)
            address = subprocess.run(["docker", "exec", node, "hostname", "-I"], capture_output=True, text=True,
                                     check=True).stdout.split()[0]
            out = subprocess.run(["docker", "run", "--rm", "--network", network_name(self.name), "--entrypoint",
                                  "python3", "gymfleet-lab:bare", "-c", probe, address, *ports],
                                 capture_output=True, text=True, check=True).stdout
            answered += [f"{node}:{port}" for port in out.split()]
        return answered

    def exposed_after_a_tagged_deploy(self, home: Path | None = None) -> list[str]:
        """The same after `deploy -t redis` adds an instance while a program of its own listens on node1."""
        first = self.nodes_names()[0]
        subprocess.run(["docker", "exec", first, "systemd-run", "--unit", "bench-stray", "--", "python3", "-m",
                        "http.server", "--bind", "0.0.0.0", "18997"], capture_output=True, check=True)
        _, proc = run([str(BIN / "gymfleet"), "deploy", "--plain", "-t", "redis", "-i", str(ROOT / self.inventory),
                       "-e", '{"redis_instances": [{"port": 6390}, {"port": 6393}]}'], home)
        try:
            for _ in range(50):
                listening = subprocess.run(["docker", "exec", first, "ss", "-ltnH"], capture_output=True,
                                           text=True).stdout
                if ":6393 " in listening and ":18997 " in listening:
                    break
                time.sleep(0.2)
            if proc.returncode != 0 or ":6393 " not in listening or ":18997 " not in listening:
                raise SystemExit(f"deploy -t redis on {self.name}: rc {proc.returncode}, new ports not listening: "
                                 f"{proc.stdout[-2000:]}")
            return self.exposed()
        finally:
            subprocess.run(["docker", "exec", first, "systemctl", "stop", "bench-stray"], capture_output=True)

    def task_cost(self) -> float:
        """Seconds per task of a playbook of TRIVIAL_TASKS set_fact tasks on every host, less an empty one's."""
        times = []
        with tempfile.TemporaryDirectory() as folder:
            for count in (0, TRIVIAL_TASKS):
                playbook = Path(folder) / f"tasks{count}.yml"
                tasks = [{"name": f"trivial {i}", "ansible.builtin.set_fact": {f"trivial_{i}": i}}
                         for i in range(count)]
                playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
                seconds, _ = run([str(BIN / "ansible-playbook"), "-i", str(ROOT / self.inventory), str(playbook)])
                times.append(seconds)
        return (times[1] - times[0]) / TRIVIAL_TASKS

    def adhoc(self) -> float:
        seconds, _ = run([str(BIN / "ansible"), "-i", str(ROOT / self.inventory), "all", "-m", "ansible.builtin.ping"])
        return seconds


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="a commit whose playbooks run beside this checkout's, such as 9ad269d")
    parser.add_argument("--big", type=int, default=24, help="hosts of the large base-roles lab")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--only", choices=["demo", "base"], help="only the demo stack, or only the base roles")
    parser.add_argument("--keep", action="store_true", help="leave the labs up afterwards")
    args = parser.parse_args()

    worktree = None
    if args.baseline:
        worktree = Path(tempfile.mkdtemp(prefix="gymfleet-baseline-")) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
    if not args.skip_big and INOTIFY.exists() and int(INOTIFY.read_text()) < 1024:
        print(f"raising {INOTIFY} from {INOTIFY.read_text().strip()} to 1024 for {args.big} systemd hosts")
        INOTIFY.write_text("1024")

    rows: list[tuple[str, str, str, str, str]] = []
    sizes = [(3, True), (3, False)] + ([] if args.skip_big else [(args.big, False)])
    sizes = [size for size in sizes if args.only is None or size[1] == (args.only == "demo")]
    trees = [("this", None)] + ([(args.baseline, worktree)] if worktree else [])
    figures: dict[tuple, dict] = {}
    labs: list[Lab] = []
    try:
        for nodes, stack in sizes:
            label = "demo stack, 3 hosts" if stack else f"base roles, {nodes} hosts"
            # Each tree on a lab of its own: two versions managing the same hosts would undo each other.
            pairs = [(tree_label, home, Lab(f"bench{'demo' if stack else 'base'}{nodes}{'b' if home else ''}",
                                            nodes, stack)) for tree_label, home in trees]
            samples: dict[str, dict[str, list]] = {t: {"deploy": [], "status": [], "adhoc": [], "task": []}
                                                   for t, _ in trees}
            for tree_label, home, lab in pairs:
                labs.append(lab)
                lab.up()
                samples[tree_label]["cold"] = lab.deploy(home)
            for _ in range(args.runs):
                for tree_label, home, lab in pairs:
                    samples[tree_label]["deploy"].append(lab.deploy(home))
                    samples[tree_label]["status"].append(lab.status(home))
                    samples[tree_label]["adhoc"].append(lab.adhoc())
                    samples[tree_label]["task"].append(lab.task_cost())
            for tree_label, home, lab in pairs:
                got = samples[tree_label]
                exposure = (lab.exposed(), lab.exposed_after_a_tagged_deploy(home)) if stack else ([], [])
                figures[(label, tree_label)] = {
                    "exposed": exposure,
                    "cold": got["cold"],
                    "deploy": (median([d[0] for d in got["deploy"]]), max((d[1] or 0) for d in got["deploy"])),
                    "cpu": median([d[2] for d in got["deploy"]]),
                    "calls": median([d[3] for d in got["deploy"]]),
                    "tasks": median([d[4] or 0 for d in got["deploy"]]),
                    "task_cost": median(got["task"]),
                    "status": (median([s[0] for s in got["status"]]), all(s[1] for s in got["status"])),
                    "adhoc": median(got["adhoc"]),
                }
                if not args.keep:
                    lab.down()
            this, base = figures[(label, "this")], figures.get((label, args.baseline))

            def seconds(entry, key):
                return f"{entry[key][0]:.1f} s" if entry else "-"

            if stack:
                rows.append((f"cold deploy, {label}", seconds(base, "cold"),
                             f"{this['cold'][0]:.1f} s ({this['cold'][1]} changes)",
                             f"{this['cold'][0] / base['cold'][0]:.2f}x" if base else "", "no slower (248 s before)"))
            adhoc = this["adhoc"]
            rows.append((f"no-op deploy, {label}",
                         f"{base['deploy'][0]:.1f} s, {base['deploy'][1]} changes" if base else "-",
                         f"{this['deploy'][0]:.1f} s, {this['deploy'][1]} changes",
                         f"{this['deploy'][0] / adhoc:.1f}x ad-hoc",
                         f"<= 5x ad-hoc ({5 * adhoc:.1f} s), 0 changes" if stack else ""))
            if stack:
                for when, index in (("after the deploy", 0), ("after deploy -t redis with a new instance and a "
                                                              "program's own port", 1)):
                    found = this["exposed"][index]
                    rows.append((f"ports answering a non-member {when}, {label}",
                                 str(len(base["exposed"][index])) if base else "-",
                                 f"{len(found)}{' (' + ', '.join(found) + ')' if found else ''}", "",
                                 "0 besides SSH and declared-public ports"))
            rows.append((f"remote calls per host in that no-op deploy, {label}",
                         f"{base['calls']:.0f}" if base else "-", f"{this['calls']:.0f}", "",
                         "<= stages + 2 (6: 4 stages)" if stack else ""))
            rows.append((f"tasks in that no-op deploy (each on every host of its play), {label}",
                         f"{base['tasks']:.0f}" if base else "-", f"{this['tasks']:.0f}", "", ""))
            cost = this["task_cost"]
            rows.append((f"Ansible's own cost per task ({TRIVIAL_TASKS} set_fact tasks less an empty play), {label}",
                         f"{base['task_cost'] * 1000:.0f} ms" if base else "-", f"{cost * 1000:.0f} ms", "",
                         f"bounds the no-op: its {this['tasks']:.0f} tasks alone cost {this['tasks'] * cost:.1f} s "
                         f"of the {5 * adhoc:.1f} s 5x ad-hoc allows" if stack else ""))
            rows.append((f"status, {label}", seconds(base, "status"),
                         f"{this['status'][0]:.1f} s{'' if this['status'][1] else ' NOT healthy'}",
                         f"{this['status'][0] / adhoc:.1f}x ad-hoc",
                         f"<= 1.5x ad-hoc ({1.5 * adhoc:.1f} s)" if stack else "<= 8 s" if nodes > 3 else ""))
            rows.append((f"one ad-hoc task, {label}", f"{base['adhoc']:.1f} s" if base else "-", f"{adhoc:.1f} s",
                         "", "the floor"))
        if not args.skip_big and args.only != "demo":
            for tree_label in [t for t, _ in trees]:
                small = figures[("base roles, 3 hosts", tree_label)]["deploy"][0]
                big = figures[(f"base roles, {args.big} hosts", tree_label)]["deploy"][0]
                rows.append((f"no-op deploy {args.big} hosts / 3 hosts ({tree_label})", "", f"{big / small:.1f}x", "",
                             "<= 3.5x (8.0x before)"))
                small_cpu = figures[("base roles, 3 hosts", tree_label)]["cpu"]
                big_cpu = figures[(f"base roles, {args.big} hosts", tree_label)]["cpu"]
                rows.append((f"controller CPU of that no-op, {args.big} hosts / 3 hosts ({tree_label})", "",
                             f"{big_cpu:.1f} / {small_cpu:.1f} CPU-s = {big_cpu / small_cpu:.1f}x", "",
                             f"{args.big / 3:.0f}x would be linear"))
                small_adhoc = figures[("base roles, 3 hosts", tree_label)]["adhoc"]
                big_adhoc = figures[(f"base roles, {args.big} hosts", tree_label)]["adhoc"]
                rows.append((f"one ad-hoc task {args.big} hosts / 3 hosts ({tree_label})", "",
                             f"{big_adhoc / small_adhoc:.1f}x", "", "the floor's own growth on this machine"))
    finally:
        if not args.keep:
            for lab in labs:
                lab.down()
        if worktree:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)

    print(f"| measure | {args.baseline or 'baseline'} | this checkout | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(cell or "-" for cell in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
