"""How the parameter_server role turns the processes of geomx_processes into systemd units on one host."""

from __future__ import annotations

import os
import re
import shlex

from ansible_collections.gymfleet.cluster.plugins.filter.geomx import geomx_hosts, geomx_topology_problems

# The role's own files, beside the user's: the bundled dist_sync check and the scheduler's port wait.
BUNDLED_FILES = ("dist_sync_check.py", "wait_port.py")


def parameter_server_units(processes: list, prefix: str, interface: str, runtime: str = "host") -> list[dict]:
    """Each process with its unit name, its environment file's text and, for a scheduler, the address and port
    it listens on; DMLC_INTERFACE set to this host's (or the container's).

    In a container (runtime docker) a scheduler's address is its host's, which the members reach through the
    published port: DMLC_USE_KUBERNETES makes ps-lite's scheduler bind every address instead of that one, which
    is not in the container."""
    units = []
    for process in processes:
        name = prefix + re.sub(r"[^A-Za-z0-9_.-]", "-", process["name"])
        env = {**process["env"], "DMLC_INTERFACE": interface} if interface else dict(process["env"])
        if runtime == "docker" and process["kind"] in ("global_scheduler", "scheduler"):
            env["DMLC_USE_KUBERNETES"] = "1"
        # Where a scheduler listens: the global scheduler on the global root, a local one on its root.
        listen = ""
        if process["kind"] == "global_scheduler":
            listen = f"{env['DMLC_PS_GLOBAL_ROOT_URI']} {env['DMLC_PS_GLOBAL_ROOT_PORT']}"
        elif process["kind"] == "scheduler":
            listen = f"{env['DMLC_PS_ROOT_URI']} {env['DMLC_PS_ROOT_PORT']}"
        units.append({**process, "env": env, "unit": f"{name}.service", "env_file_name": f"{name}.env",
                      "listen": listen, "runtime": runtime,
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
    held until it listens.

    With settings runtime docker, each unit runs its process in a container of settings image on docker0 (the
    GeoMX guide's way): the job directory mounted read-only, the state directory writable, a scheduler's port
    published on its address, and the container removed when it ends."""
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
        env_file = f"{settings['env_dir']}/{unit['env_file_name']}"
        service_options = {
            "SyslogIdentifier": name,
            "ExecStartPre": [f"/bin/rm -f {state_dir}/%N.exit"],
            # systemd forgets a unit that exited cleanly; the status reads how it ended from this file.
            # $$ leaves the variables to the shell, which gets them from systemd.
            "ExecStopPost": f"/bin/sh -c 'echo \"$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS\" > {state_dir}/%N.exit'",
        }
        wait_port = f"{settings['job_dir']}/wait_port.py"
        kind = unit["kind"].replace("_", " ")
        declaration = {"name": name, "description": f"ps-lite process {unit['name']} ({kind})",
                       "files": [env_file], "watch": watch, "restart": "no", "enabled": False}
        if settings.get("runtime", "host") == "docker":
            docker = settings["docker"]
            address, port = unit["listen"].split() if unit["listen"] else ("", "")
            published = ["-p", f"{address}:{port}:{port}"] if port else []
            # --init: a process that is PID 1 ignores SIGTERM, so a stop would wait for docker's SIGKILL.
            argv = [docker, "run", "--rm", "--init", "--name", name, "--label", "gymfleet.component=parameter_server",
                    "--env-file", env_file, "-e", "PYTHONUNBUFFERED=1", "-e", "HOME=/tmp",
                    "-v", f"{settings['job_dir']}:{settings['job_dir']}:ro", "-v", f"{state_dir}:{state_dir}",
                    "-w", settings["job_dir"], *published, settings["image"], *argv]
            # A container left by a unit that died with it would hold the name.
            service_options["ExecStartPre"].append(f"/bin/sh -c '{docker} rm --force {name} >/dev/null 2>&1 || true'")
            # Also run when the process ended on its own, after the container went (--rm).
            service_options["ExecStop"] = (f"/bin/sh -c '! {docker} container inspect {name} >/dev/null 2>&1"
                                           f" || {docker} stop --time 10 {name}'")
            # The docker command exits 143 (128 + SIGTERM) when a stop ends the container: a clean stop.
            service_options["SuccessExitStatus"] = "143"
            listen = f"--container {name} {port}" if port else ""
            declaration.update(argv=argv, after=["docker.service"], requires=["docker.service"])
            python = settings["host_python"]
        else:
            listen = unit["listen"]
            # A program named without a path (python train.py) is found on the PATH systemd gives services.
            if not argv[0].startswith("/"):
                argv = ["/usr/bin/env", *argv]
            # ps-lite's vans bind ports they pick at run time (a global server's always): members only, as the
            # firewall refuses every other port to non-members; status does not ask for them in the port plan.
            declaration.update(argv=argv, user=settings["user"], working_directory=settings["job_dir"],
                               environment={"PYTHONUNBUFFERED": "1"}, environment_files=[env_file],
                               unit_options={"X-Gymfleet-Listens": "any"})
            python = settings["python"]
        if listen:
            wait = settings["wait_timeout"]
            service_options.update(ExecStartPost=f"{python} {wait_port} {listen} --timeout {wait}",
                                   TimeoutStartSec=int(wait) + 10)
        services.append({**declaration, "service_options": service_options})
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


def parameter_server_topology_problems(given: dict, topology: dict, members: list[str], group: str) -> list[str]:
    """What is wrong with the job's topology as a whole, each with its fix: none given, an inconsistency
    (geomx_topology_problems), or a host it places a process on that is not in the group.

    given: parameter_server_topology as written; topology: the same with the role's defaults and the hosts'
    addresses filled in; members: the hosts of the group."""
    if not given:
        return ["parameter_server_topology is empty; fix: describe the central party and the parties (or mode "
                "single), see ansible-doc -t filter gymfleet.cluster.geomx_processes"]
    problems = [f"parameter_server_topology: {problem}" for problem in geomx_topology_problems(topology)]
    return problems + [f"host {host}: parameter_server_topology places processes on it but it is not in group "
                       f"{group}; fix: add it to the group (or correct the host name)"
                       for host in geomx_hosts(topology) if host not in members]


def parameter_server_container_problems(host: str, in_docker_bridge: bool, image: str, python: str) -> list[str]:
    """What keeps a host from running its processes in containers (parameter_server_runtime docker)."""
    problems = []
    if not in_docker_bridge:
        problems.append(f"host {host}: parameter_server_runtime is docker but the host is not in group docker_bridge, "
                        "which gives docker0 its subnet, routes and SNAT; fix: add it to docker_bridge (or set "
                        "parameter_server_runtime: host)")
    if image and not python:
        problems.append(f"host {host}: parameter_server_image is {image} but parameter_server_python is empty; fix: "
                        "set parameter_server_python to the interpreter in the image (python3 in GeoMX images)")
    return problems


def host_address_entries(hostvars: dict) -> list[str]:
    """A host's cluster address, then its Docker bridge subnet, as far as the inventory knows them."""
    return [entry for entry in (hostvars.get("cluster_address"), hostvars.get("docker_bridge_subnet")) if entry]


def host_address_map(hosts: list[str], hostvars) -> dict[str, list[str]]:
    """host -> its host_address_entries, for every host given: the host address map of geomx_with_addresses."""
    return {host: host_address_entries(hostvars[host]) for host in hosts}


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
                               "kind": process["kind"], "unit": process["unit"], "scheduler": scheduler,
                               "runtime": process.get("runtime", "host")},
                       "probes": {"units": {"units": {"pattern": process["unit"]}},
                                  "exit": {"file": {"path": f"{state_dir}/{stem}.exit"}}}})
    return checks


class FilterModule:
    def filters(self):
        return {"parameter_server_units": parameter_server_units, "parameter_server_layout": parameter_server_layout,
                "parameter_server_services": parameter_server_services,
                "parameter_server_port_claims": parameter_server_port_claims,
                "host_address_entries": host_address_entries, "host_address_map": host_address_map,
                "parameter_server_status_checks": parameter_server_status_checks,
                "parameter_server_topology_problems": parameter_server_topology_problems,
                "parameter_server_container_problems": parameter_server_container_problems}
