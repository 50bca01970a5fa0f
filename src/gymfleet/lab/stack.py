"""The whole gymfleet stack laid out over a lab's hosts, for `make demo`.

`gymfleet lab stack` writes stack.yml beside the lab's hosts.yml, so the lab's inventory directory
names every system: Redis, OmniBoxes (master on node1, a pool on every node), Ray (head on node1,
workers on the others), OpenEnv servers on the other nodes behind Envoy on node1, and a small
single-tier parameter-server job (scheduler on node1, a server on node2, workers on node1 and the last
node). With one node everything runs on it.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from gymfleet.errors import GymfleetError

STACK_FILE = "stack.yml"
OPENENV_PROJECT = "echo_env"


def _lab_hosts(lab_dir: Path) -> list[tuple[str, str]]:
    hosts_file = lab_dir / "hosts.yml"
    if not hosts_file.is_file():
        raise GymfleetError(f"lab inventory {hosts_file} is missing; fix: `gymfleet lab up --name {lab_dir.name}`")
    members = yaml.safe_load(hosts_file.read_text())["all"]["children"]["cluster"]["hosts"]
    return [(name, values["gymfleet_lab_ip"]) for name, values in members.items()]


def openenv_project(work_dir: Path) -> Path:
    """OpenEnv's own template environment, made once by `openenv init` on the controller."""
    project = work_dir / "openenv" / OPENENV_PROJECT
    if (project / "server" / "app.py").is_file():
        return project
    openenv = shutil.which("openenv") or str(Path(sys.executable).parent / "openenv")
    if not Path(openenv).exists():
        raise GymfleetError("the demo's environment server comes from `openenv init`, which is not installed; "
                            "fix: pip install openenv-core==0.3.0 (make demo's virtualenv has it)")
    project.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([openenv, "init", OPENENV_PROJECT], cwd=project.parent, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0 or not (project / "server" / "app.py").is_file():
        raise GymfleetError(f"`openenv init {OPENENV_PROJECT}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return project


def render_stack(hosts: list[tuple[str, str]], omniboxes: Path | None, project: Path, double: Path,
                 work_dir: Path) -> str:
    names = [name for name, _ in hosts]
    first, others = names[0], names[1:] or names[:1]
    gateway = next(ipaddress.ip_network(f"{hosts[0][1]}/24", strict=False).hosts())
    omniboxes_vars = (
        # A webgym checkout, with Debian's chromium: Playwright's own download cannot reach its servers from here.
        {"omniboxes_source": "path", "omniboxes_local_path": str(omniboxes), "omniboxes_browser": "system"}
        if omniboxes else
        # The named test double of upstream's servers (tests/doubles/omniboxes), which launches no browser.
        {"omniboxes_source": "path", "omniboxes_local_path": str(double), "omniboxes_browser": "none"}
    )
    stack = {
        "all": {
            "vars": {
                # The machine the lab runs on may open the dashboards and APIs; nothing else outside the lab.
                "firewall_allowed_cidrs": [f"{gateway}/32"],
                **omniboxes_vars,
                "omniboxes_instances": 2,
                # OmniBoxes' registry Redis has 6379 on node1, the GCS's default.
                "ray_gcs_port": 6479,
                # Small, so Ray's three nodes fit beside everything else on one machine.
                "ray_object_store_memory": 100_000_000,
                "ray_num_cpus": 1,
                "ray_wait_timeout": 300,
                "openenv_source": "path",
                "openenv_local_path": str(project),
                "openenv_workers": 1,
                # Beside Envoy's 8000 when both land on one host (a one-node lab).
                "openenv_ports": [8001],
                "envoy_connection_file_controller": str(work_dir / "openenv-connection.env"),
                "parameter_server_topology": {
                    "mode": "single",
                    "verbose": 0,
                    "single": {"host": first, "scheduler_port": 9092, "servers": [others[0]],
                               "workers": sorted({first, names[-1]}, key=names.index)},
                },
            },
            "children": {
                # OmniBoxes' registry wants 6379 on node1: the users' Redis moves aside.
                "redis": {"vars": {"redis_instances": [{"port": 6390}]}},
                "omniboxes_master": {"hosts": {first: {}}},
                "omniboxes_worker": {"hosts": {name: {} for name in names}},
                "ray_head": {"hosts": {first: {}}},
                "ray_worker": {"hosts": {name: {} for name in others if name != first}},
                "openenv_envoy": {"hosts": {first: {}}},
                "openenv_worker": {"hosts": {name: {} for name in others}},
                "parameter_server": {"hosts": {name: {} for name in names}},
            },
        }
    }
    if not stack["all"]["children"]["ray_worker"]["hosts"]:
        del stack["all"]["children"]["ray_worker"]
    header = ("---\n# Written by `gymfleet lab stack`: the whole gymfleet stack on this lab's hosts (see hosts.yml).\n"
              "# `gymfleet lab down` removes it with the lab.\n")
    return header + yaml.safe_dump(stack, sort_keys=False, default_flow_style=False)


def write_stack(lab_dir: Path, work_dir: Path, double: Path, omniboxes: Path | None = None) -> Path:
    """stack.yml in the lab's inventory; what it points at (the OpenEnv project, Envoy's connection file)
    goes to work_dir, outside the inventory directory, where Ansible would try to read it as inventory."""
    if omniboxes is not None and not (omniboxes / "omniboxes").is_dir():
        raise GymfleetError(f"--omniboxes {omniboxes}: no omniboxes/ package in it; fix: point at a checkout of "
                            "microsoft/webgym (the directory that contains omniboxes/)")
    hosts = _lab_hosts(lab_dir)
    path = lab_dir / STACK_FILE
    work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(render_stack(hosts, omniboxes.resolve() if omniboxes else None, openenv_project(work_dir), double,
                                 work_dir))
    return path
