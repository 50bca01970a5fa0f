"""How the parameter_server role turns the processes of geomx_processes into systemd units on one host."""

from __future__ import annotations

import os
import re

# The role's own files, beside the user's: the bundled dist_sync check and the scheduler's port wait.
BUNDLED_FILES = ("dist_sync_check.py", "wait_port.py")


def parameter_server_units(processes: list, prefix: str, interface: str) -> list[dict]:
    """Each process with its unit name, its environment file's text and, for a scheduler, the address and port
    it listens on; DMLC_INTERFACE set to this host's."""
    units = []
    for process in processes:
        name = prefix + re.sub(r"[^A-Za-z0-9_.-]", "-", process["name"])
        env = {**process["env"], "DMLC_INTERFACE": interface} if interface else dict(process["env"])
        # Where a scheduler listens: the global scheduler on the global root, a local one on its root.
        listen = ""
        if process["kind"] == "global_scheduler":
            listen = f"{env['DMLC_PS_GLOBAL_ROOT_URI']} {env['DMLC_PS_GLOBAL_ROOT_PORT']}"
        elif process["kind"] == "scheduler":
            listen = f"{env['DMLC_PS_ROOT_URI']} {env['DMLC_PS_ROOT_PORT']}"
        units.append({**process, "env": env, "unit": f"{name}.service", "env_file_name": f"{name}.env",
                      "listen": listen,
                      "env_text": "".join(f"{key}={value}\n" for key, value in sorted(env.items()))})
    return units


def parameter_server_layout(units: list[dict], job_dir: str, env_dir: str, extra_files: list[str]) -> dict:
    """What the job needs on this host, for host_files: its directories, the bundled and the user's files (from
    the controller) in the job directory, and each process's environment file."""
    sources = [*BUNDLED_FILES, *extra_files]
    owned = {"owner": "root", "group": "root"}
    return {
        "directories": [{"path": path, **owned, "mode": "0755"} for path in (job_dir, env_dir)],
        "files": [{"src": source, "dest": f"{job_dir}/{os.path.basename(source)}"} for source in sources]
        + [{"dest": f"{env_dir}/{unit['env_file_name']}", "content": unit["env_text"]} for unit in units],
    }


def host_address_entries(hostvars: dict) -> list[str]:
    """A host's cluster address, then its Docker bridge subnet, as far as the inventory knows them."""
    return [entry for entry in (hostvars.get("cluster_address"), hostvars.get("docker_bridge_subnet")) if entry]


def parameter_server_status_checks(processes: list[dict], state_dir: str) -> list[dict]:
    """The status checks of this host's processes (module host_status): each unit, and how its last run ended
    (the file its ExecStopPost writes)."""
    checks = []
    for process in processes:
        env = process["env"]
        local = "DMLC_PS_ROOT_URI" in env
        scheduler = (f"{env['DMLC_PS_ROOT_URI']}:{env['DMLC_PS_ROOT_PORT']}" if local
                     else f"{env.get('DMLC_PS_GLOBAL_ROOT_URI', '?')}:{env.get('DMLC_PS_GLOBAL_ROOT_PORT', '?')}")
        stem = process["unit"].removesuffix(".service")
        checks.append({"id": f"ps-{process['name']}",
                       "row": {"judge": "parameter_server", "system": "parameter_server",
                               "component": f"ps {process['name']}", "name": process["name"],
                               "kind": process["kind"], "unit": process["unit"], "scheduler": scheduler},
                       "probes": {"units": {"units": {"pattern": process["unit"]}},
                                  "exit": {"file": {"path": f"{state_dir}/{stem}.exit"}}}})
    return checks


class FilterModule:
    def filters(self):
        return {"parameter_server_units": parameter_server_units, "parameter_server_layout": parameter_server_layout,
                "host_address_entries": host_address_entries,
                "parameter_server_status_checks": parameter_server_status_checks}
