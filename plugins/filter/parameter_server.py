"""How the parameter_server role turns the processes of geomx_processes into systemd units on one host."""

from __future__ import annotations

import os
import re
import shlex

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


def parameter_server_services(units: list[dict], settings: dict) -> list[dict]:
    """The declarations of the services engine (state installed) for this host's units: each process as its job's
    user in the job directory with its environment file, never restarted by systemd and never started at boot
    (the job starts in order across hosts), how it ended written to the state directory, and a scheduler's start
    held until it listens."""
    state_dir = settings["state_dir"]
    # The programs laid out in the job directory, not the directory itself, which a job may write into.
    watch = [f"{settings['job_dir']}/{os.path.basename(source)}" for source in (*BUNDLED_FILES, *settings["files"])]
    watch += settings["watch"]
    services = []
    for unit in units:
        name = unit["unit"].removesuffix(".service")
        # The engine passes every word literally (no systemd specifiers), so %N, the one a program line may use
        # (the worker's --result file), is expanded here.
        argv = [word.replace("%N", name) for word in shlex.split(unit["program"])]
        # A program named without a path (python train.py) is found on the PATH systemd gives services.
        if not argv[0].startswith("/"):
            argv = ["/usr/bin/env", *argv]
        env_file = f"{settings['env_dir']}/{unit['env_file_name']}"
        service_options = {
            "SyslogIdentifier": name,
            "ExecStartPre": f"/bin/rm -f {state_dir}/%N.exit",
            # systemd forgets a unit that exited cleanly; the status reads how it ended from this file.
            # $$ leaves the variables to the shell, which gets them from systemd.
            "ExecStopPost": f"/bin/sh -c 'echo \"$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS\" > {state_dir}/%N.exit'",
        }
        if unit["listen"]:
            wait = settings["wait_timeout"]
            wait_port = f"{settings['job_dir']}/wait_port.py"
            service_options.update(ExecStartPost=f"{settings['python']} {wait_port} {unit['listen']} --timeout {wait}",
                                   TimeoutStartSec=int(wait) + 10)
        services.append({
            "name": name, "description": f"ps-lite process {unit['name']} ({unit['kind'].replace('_', ' ')})",
            "argv": argv, "user": settings["user"], "working_directory": settings["job_dir"],
            "environment": {"PYTHONUNBUFFERED": "1"}, "environment_files": [env_file], "files": [env_file],
            "watch": watch, "restart": "no", "enabled": False,
            "service_options": service_options,
        })
    return services


def parameter_server_port_claims(processes: list[dict]) -> list[dict]:
    """The ports this host's schedulers listen on, as claims for the preflight's port plan."""
    claims = []
    for process in processes:
        key = {"global_scheduler": "DMLC_PS_GLOBAL_ROOT_PORT", "scheduler": "DMLC_PS_ROOT_PORT"}.get(process["kind"])
        if key:
            claims.append({"component": f"parameter server {process['name']}", "variable": "parameter_server_topology",
                           "ports": int(process["env"][key])})
    return claims


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
                "parameter_server_services": parameter_server_services,
                "parameter_server_port_claims": parameter_server_port_claims,
                "host_address_entries": host_address_entries,
                "parameter_server_status_checks": parameter_server_status_checks}
