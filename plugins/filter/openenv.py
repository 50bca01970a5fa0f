"""OpenEnv environment servers as service declarations: one uvicorn server per port."""

from __future__ import annotations

import os
import re

from ansible_collections.gymfleet.cluster.plugins.module_utils.slurm_steps import squeue_steps_argv


def openenv_services(ports: list, settings: dict) -> list[dict]:
    """One declaration per port, with the runbook's environment (PORT, WORKERS, MAX_CONCURRENT_ENVS).

    settings: python_env_path, app, host, workers, max_concurrent_envs, environment, user, working_directory,
    restart_sec, enabled, watch (code and requirements whose change restarts the servers), probe (wait for
    /health), cpus (what a SLURM step asks for; 0 for none).
    """
    services = []
    for port in ports:
        port = int(port)
        environment = {"PORT": port, "WORKERS": settings["workers"],
                       "MAX_CONCURRENT_ENVS": settings["max_concurrent_envs"], "PYTHONUNBUFFERED": 1}
        environment.update(settings.get("environment") or {})
        services.append({
            "name": f"openenv@{port}",
            "description": f"OpenEnv environment server on port {port}",
            "argv": [f"{settings['python_env_path']}/bin/uvicorn", settings["app"], "--host", settings["host"],
                     "--port", str(port), "--workers", str(settings["workers"])],
            "environment": {k: str(v) for k, v in environment.items()},
            "user": settings["user"],
            "working_directory": settings["working_directory"],
            "ports": [port],
            "health": {"http": f"http://{settings['host']}:{port}/health"} if settings.get("probe", True) else None,
            "restart_sec": int(settings["restart_sec"]),
            "enabled": bool(settings["enabled"]),
            "watch": list(settings.get("watch") or []),
            "cpus": int(settings.get("cpus") or 0),
        })
    return services


def slurm_cpus(cpus_per_task, cpus_per_node="") -> int:
    """The CPUs a server's step gets, as the runbook counts WORKERS: SLURM_CPUS_PER_TASK, else the first node's
    count in SLURM_JOB_CPUS_PER_NODE (such as `48(x3)` or `48,32`), else 1."""
    for text in (str(cpus_per_task or ""), str(cpus_per_node or "")):
        digits = re.match(r"\s*(\d+)", text)
        if digits and int(digits.group(1)) > 0:
            return int(digits.group(1))
    return 1


def openenv_status_checks(ports: list, address: str, health_path: str = "/health", slurm_job: str = "") -> list[dict]:
    """The status checks of the servers (module host_status): each one's health path on the cluster address, and
    with a SLURM job, the job's steps (each server's step is named by services' slurm runtime)."""
    checks = []
    for port in ports:
        url = f"http://{address}:{int(port)}"
        probes = {"health": {"http": {"url": url + health_path, "json": False}}}
        row = {"judge": "openenv_server", "system": "openenv", "component": f"openenv :{int(port)}", "url": url}
        if slurm_job:
            probes["steps"] = slurm_steps_probe(slurm_job)
            row["step"] = {"component": "openenv", "service": f"openenv@{int(port)}"}
        checks.append({"id": f"openenv-{int(port)}", "probes": probes, "row": row})
    return checks


def slurm_steps_probe(job: str) -> dict:
    """A host_status probe listing a SLURM job's running steps, as the slurm runtime lists them."""
    return {"command": {"argv": squeue_steps_argv(job)}}


SOURCE_VARIABLES = {"pip": "openenv_pip_spec", "git": "openenv_git_repo", "path": "openenv_local_path"}


def openenv_host_problems(settings: dict) -> list[str]:
    """What is wrong with a host's environment-server settings, each with its fix: the chosen source's variable
    empty, a path source without server/app.py on the controller, no port.

    settings: source (pip, git or path), pip_spec, git_repo, local_path, ports."""
    problems = []
    variable = SOURCE_VARIABLES[settings["source"]]
    if not settings[variable.removeprefix("openenv_")]:
        problems.append(f"openenv_source is {settings['source']} but {variable} is empty; fix: set it")
    path = settings["local_path"]
    if settings["source"] == "path" and path and not os.path.isfile(os.path.join(path, "server", "app.py")):
        problems.append(f"openenv_local_path {path} has no server/app.py on the controller; fix: point it at the "
                        "environment project (what openenv init made)")
    if not settings["ports"]:
        problems.append("openenv_ports is empty; fix: give at least one port (the runbook uses 8000)")
    return problems


class FilterModule:
    def filters(self):
        return {"openenv_services": openenv_services, "openenv_status_checks": openenv_status_checks,
                "slurm_cpus": slurm_cpus, "slurm_steps_probe": slurm_steps_probe,
                "openenv_host_problems": openenv_host_problems}
