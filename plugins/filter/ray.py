"""The `ray start` command line of a head or worker node, and the ports it will bind, from one dict of settings.

One function builds both, so the firewall opens exactly the ports the unit passes to Ray.
"""

from __future__ import annotations

import json
import re

from ansible_collections.gymfleet.cluster.plugins.filter.table import text_table

# Fixed ports: (setting, `ray start` flag, what it is); the head alone runs the first four.
HEAD_PORTS = (
    ("gcs_port", "--port", "ray GCS"),
    ("dashboard_port", "--dashboard-port", "ray dashboard"),
    ("client_server_port", "--ray-client-server-port", "ray client server"),
)
NODE_PORTS = (
    ("node_manager_port", "--node-manager-port", "ray node manager"),
    ("object_manager_port", "--object-manager-port", "ray object manager"),
    ("metrics_export_port", "--metrics-export-port", "ray metrics export"),
    ("dashboard_agent_listen_port", "--dashboard-agent-listen-port", "ray dashboard agent"),
    ("dashboard_agent_grpc_port", "--dashboard-agent-grpc-port", "ray dashboard agent grpc"),
    ("runtime_env_agent_port", "--runtime-env-agent-port", "ray runtime env agent"),
)

# Ports the head's autoscaler monitor and dashboard open for Prometheus on every interface, which `ray start` has
# no flag for: Ray reads them from the environment. (setting, variable, what it is)
HEAD_ENVIRONMENT_PORTS = (
    ("autoscaler_metrics_port", "AUTOSCALER_METRIC_PORT", "ray autoscaler metrics"),
    ("dashboard_metrics_port", "DASHBOARD_METRIC_PORT", "ray dashboard metrics"),
)


def _head(settings: dict) -> bool:
    role = settings.get("role")
    if role not in ("head", "worker"):
        raise ValueError(f"role must be head or worker, not {role!r}")
    return role == "head"


def ray_start_argv(settings: dict) -> list[str]:
    """`ray start --block ...` for the unit's ExecStart, as an argv list.

    settings: role (head|worker), ray (path of the ray executable), node_ip (the cluster address),
    head_address (host:port of the GCS, for workers), the ports named in HEAD_PORTS and NODE_PORTS,
    min_worker_port / max_worker_port, num_cpus, num_gpus (None: let Ray detect), resources (dict),
    object_store_memory (bytes), temp_dir, dashboard_host (head), include_dashboard (head).
    Unset (None) settings are left out.
    """
    head = _head(settings)
    argv = [settings["ray"], "start", "--block", "--node-ip-address", settings["node_ip"]]
    if head:
        dashboard = settings.get("include_dashboard", True)
        argv.append("--head")
        for key, flag, _ in HEAD_PORTS:
            if settings.get(key) is not None and (dashboard or key != "dashboard_port"):
                argv += [flag, str(settings[key])]
        argv += ["--include-dashboard", "true" if dashboard else "false"]
        if dashboard and settings.get("dashboard_host"):
            argv += ["--dashboard-host", settings["dashboard_host"]]
    else:
        argv += ["--address", settings["head_address"]]
    for key, flag, _ in NODE_PORTS:
        if settings.get(key) is not None:
            argv += [flag, str(settings[key])]
    for key, flag in (("min_worker_port", "--min-worker-port"), ("max_worker_port", "--max-worker-port")):
        if settings.get(key) is not None:
            argv += [flag, str(settings[key])]
    for key, flag in (("num_cpus", "--num-cpus"), ("num_gpus", "--num-gpus")):
        if settings.get(key) is not None:
            argv += [flag, str(settings[key])]
    if settings.get("resources"):
        argv += ["--resources", json.dumps(settings["resources"], sort_keys=True, separators=(",", ":"))]
    if settings.get("object_store_memory") is not None:
        argv += ["--object-store-memory", str(int(settings["object_store_memory"]))]
    if settings.get("temp_dir"):
        argv += ["--temp-dir", settings["temp_dir"]]
    return argv


def _environment_ports(settings: dict) -> list[tuple[str, str, str]]:
    dashboard = settings.get("include_dashboard", True)
    return [(key, variable, what) for key, variable, what in (HEAD_ENVIRONMENT_PORTS if _head(settings) else ())
            if settings.get(key) is not None and (dashboard or key != "dashboard_metrics_port")]


def ray_start_environment(settings: dict) -> dict:
    """The environment of `ray start`: PATH with the environment's bin first, the auth mode (and the token's file
    with token auth), the head's metrics ports (HEAD_ENVIRONMENT_PORTS) and each role's timing settings.

    settings: as for ray_start_argv, plus auth_mode, auth_token_path and worker_liveness_check_interval (s).
    Without GCS fault tolerance the cluster ends with its head, so the head does not drain on SIGTERM (Ray's
    drain waits for the GCS that is going away); a worker checks its own liveness at the given interval, so a
    worker cut off from the head notices it in seconds.
    """
    environment = {"PATH": settings["ray"].rsplit("/", 1)[0] + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
                           ":/sbin:/bin",
                   "RAY_AUTH_MODE": settings.get("auth_mode", "disabled")}
    if environment["RAY_AUTH_MODE"] == "token":
        environment["RAY_AUTH_TOKEN_PATH"] = settings["auth_token_path"]
    if _head(settings):
        environment["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    elif settings.get("worker_liveness_check_interval") is not None:
        environment["RAY_raylet_liveness_self_check_interval_ms"] = str(
            int(float(settings["worker_liveness_check_interval"]) * 1000))
    environment.update({variable: str(int(settings[key])) for key, variable, _ in _environment_ports(settings)})
    return environment


def ray_port_claims(settings: dict, variable_prefix: str = "ray_") -> list[dict]:
    """Port claims ({component, variable, ports}) for the preflight port plan and the firewall: the ports of the
    command line and of the environment, from the same settings."""
    head = _head(settings)
    fixed = (HEAD_PORTS if head else ()) + NODE_PORTS
    claims = [
        {"component": component, "variable": variable_prefix + key, "ports": int(settings[key])}
        for key, _, component in fixed
        if settings.get(key) is not None
        and not (key == "dashboard_port" and not settings.get("include_dashboard", True))
    ]
    claims += [{"component": what, "variable": variable_prefix + key, "ports": int(settings[key])}
               for key, _, what in _environment_ports(settings)]
    if settings.get("min_worker_port") is not None and settings.get("max_worker_port") is not None:
        claims.append({"component": "ray worker processes",
                       "variable": f"{variable_prefix}min_worker_port..{variable_prefix}max_worker_port",
                       "ports": [int(settings["min_worker_port"]), int(settings["max_worker_port"])]})
    return claims


def ray_version_mismatch(installed: list[dict]) -> str:
    """A table of host, Ray and Python versions when the nodes differ in either, else an empty string.

    installed: one {host, ray, python} per node; a node that could not report has ray or python empty.
    The most common pair is taken as the cluster's; the other rows are marked, so the odd node stands out.
    """
    pairs = [(row.get("ray") or "", row.get("python") or "") for row in installed]
    if len(set(pairs)) <= 1 and all(all(pair) for pair in pairs):
        return ""
    counts = {pair: pairs.count(pair) for pair in pairs}
    majority = max(counts, key=lambda pair: (counts[pair], pair))
    rows = [
        {"host": row["host"], "ray": row.get("ray") or "missing", "python": row.get("python") or "missing",
         "differs": "same" if pair == majority and all(pair) else "<- differs"}
        for row, pair in zip(installed, pairs, strict=True)
    ]
    return text_table(rows, ["host", "ray", "python", "differs"], ["HOST", "RAY", "PYTHON", ""])


def ray_reported_versions(hosts: list, hostvars) -> list[dict]:
    """One {host, ray, python} per node whose Python environment reported its versions in this run (the services
    engine's result registered as __ray_laid_out); a node whose environment does not exist yet (check mode) is
    left out, and one without Ray has ray empty."""
    rows = []
    for host in hosts:
        environments = (hostvars[host].get("__ray_laid_out") or {}).get("environments") or [{}]
        if "versions" not in environments[0]:
            continue
        versions = environments[0]["versions"] or {}
        rows.append({"host": host, "ray": versions.get("ray") or "", "python": versions.get("python") or ""})
    return rows


RESERVED_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")


def ray_host_problems(settings: dict) -> list[str]:
    """What is wrong with one node's Ray settings, each with its fix (the caller prefixes the host)."""
    s = settings
    problems = []
    if s["is_head"] and s["in_worker_group"]:
        problems.append(f"the host is in {s['head_group']} and in {s['worker_group']}, but a head is a node of its own "
                        f"cluster already; fix: keep it in {s['head_group']} only")
    # int(): an INI inventory gives "9999" and "10000", which compare as text the wrong way round.
    if int(s["min_worker_port"]) > int(s["max_worker_port"]):
        problems.append(f"ray_min_worker_port {s['min_worker_port']} is above ray_max_worker_port "
                        f"{s['max_worker_port']}; fix: give a range with min below max")
    problems += [f"ray_resources has the key {key}, which Ray reserves; fix: use ray_num_cpus, ray_num_gpus or "
                 "ray_object_store_memory instead" for key in s["resources"] if key in RESERVED_RESOURCES]
    if s["is_head"] and s["include_dashboard"] and re.match(r"^(127[.]|localhost$)", s["dashboard_host"]):
        problems.append(f"ray_dashboard_host is {s['dashboard_host']}, which no other host reaches; fix: leave it "
                        "empty (the cluster address) or set an address of this host")
    return problems


def ray_cluster_problems(entries: list[dict], heads: list[str], head_group: str, worker_group: str) -> list[str]:
    """What is wrong across one Ray cluster's nodes, each with its fix: one head, one Ray install, one auth mode and
    one token. entries: each node's host, pin, auth_mode and token_digest (a digest: no token reaches a message)."""
    problems = []
    if len(heads) > 1:
        problems.append(f"group {head_group} has {len(heads)} hosts ({', '.join(heads)}); fix: put exactly one host, "
                        "the head, in it")
    if not heads:
        problems.append(f"group {worker_group} has hosts but {head_group} is empty; fix: put one host, the head, in "
                        f"{head_group}")
    if len({entry["pin"] for entry in entries}) > 1:
        problems += ["the nodes pin different Ray installs, and Ray needs one version on every node; fix: set "
                     "ray_version and ray_extras once (group_vars) for all of them",
                     text_table(entries, ["host", "pin"])]
    if len({entry["auth_mode"] for entry in entries}) > 1:
        modes = ", ".join(f"{entry['host']}={entry['auth_mode']}" for entry in entries)
        problems.append(f"the nodes have different ray_auth_mode ({modes}); fix: set it once for all of them")
    if len({entry["token_digest"] for entry in entries}) > 1:
        problems.append("the nodes have different ray_auth_token values (one cluster has one token); fix: set "
                        "ray_auth_token once (group_vars, from a vault) or leave it empty everywhere")
    return problems


class FilterModule:
    def filters(self):
        return {
            "ray_cluster_problems": ray_cluster_problems,
            "ray_start_argv": ray_start_argv,
            "ray_start_environment": ray_start_environment,
            "ray_port_claims": ray_port_claims,
            "ray_version_mismatch": ray_version_mismatch,
            "ray_reported_versions": ray_reported_versions,
            "ray_host_problems": ray_host_problems,
        }
