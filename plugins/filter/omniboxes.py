"""OmniBoxes: cross-host checks of an inventory, and a host's processes as service declarations."""

from __future__ import annotations

import os
import re

from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import shared_value_problems

# Addresses that only the host itself reaches.
_LOCAL_ONLY = re.compile(r"^(127[.]|0[.]0[.]0[.]0$|localhost$)")
SOURCE_VARIABLES = {"pip": "omniboxes_pip_spec", "git": "omniboxes_git_repo", "path": "omniboxes_local_path"}


def omniboxes_host_problems(settings: dict) -> list[str]:
    """What is wrong with one host's OmniBoxes settings, each with its fix (the caller prefixes the host)."""
    s = settings
    worker, master = s["is_worker"], s["is_master"]
    problems = []
    if worker and s["instances"] < 1:
        problems.append(f"omniboxes_instances is {s['instances']} but the host is in {s['worker_group']}; fix: set it "
                        "to the number of browser instances (the launcher's NUM_INSTANCES)")
    if worker and not master and (not s["advertise_ip"] or _LOCAL_ONLY.match(s["advertise_ip"])):
        problems.append(f"the node would register as {s['advertise_url']}, which the master cannot reach; fix: set "
                        "omniboxes_advertise_ip to an address the master reaches (or cluster_address_ip)")
    if worker and not master and s["master_host"] and (
            not s["master_redis_host"] or _LOCAL_ONLY.match(s["master_redis_host"])):
        problems.append(f"the registry Redis would be {s['master_redis_host'] or 'unknown'}, which is not the master "
                        "from this worker; fix: leave omniboxes_master_redis_host empty (the master's cluster "
                        f"address) or set it to an address of {s['master_host']}")
    if master and not s["behind_firewall"]:
        problems.append(f"the registry Redis on port {s['master_redis_port']} has no password (upstream's master "
                        "sends none), so it must sit behind the firewall; fix: keep this host in group "
                        f"{s['firewall_group']} with firewall_state: present")
    source = s["sources"][s["source"]]
    if not source:
        problems.append(f"omniboxes_source is {s['source']} but {SOURCE_VARIABLES[s['source']]} is empty; fix: set it")
    elif s["source"] == "path" and not os.path.isfile(os.path.join(source, "omniboxes", "__init__.py")):
        problems.append(f"omniboxes_local_path {source} has no omniboxes/ package on the controller; fix: "
                        "point it at the directory that contains omniboxes/")
    return problems


def omniboxes_topology_problems(nodes: list[dict], groups: dict, master_group: str, worker_group: str) -> list[str]:
    """One sentence per problem, each with its fix.

    nodes: one dict per OmniBoxes host in the play with `host`, `master` and `worker` (its groups),
    `hostname` (its registry key name) and `url` (the node URL the master will use).
    groups: the inventory's groups, so that a run limited to some hosts still knows the master.
    """
    masters = sorted(groups.get(master_group, []))
    workers = sorted(groups.get(worker_group, []))
    problems = []
    if len(masters) > 1:
        problems.append(
            f"inventory: hosts {' and '.join(masters)} are all in {master_group}, but OmniBoxes has exactly one "
            f"master; fix: keep one host in [{master_group}] and list the others in [{worker_group}] only"
        )
    if workers and not masters:
        problems.append(
            f"inventory: hosts {', '.join(workers)} are in {worker_group} but no host is in {master_group}, so no "
            f"master would discover them; fix: put one host in [{master_group}] (in both groups for mode both)"
        )
    # Worker-only hosts register under their hostname; the master in mode both knows its node statically.
    registering = [node for node in nodes if node["worker"] and not node["master"]]
    problems += shared_value_problems(
        {node["host"]: node["hostname"] for node in registering},
        "OmniBoxes registry hostname",
        "the master keeps one key omnibox:nodes:<hostname> per name, so one node would hide the other; "
        "give each machine its own hostname or set omniboxes_registry_hostname",
    )
    problems += shared_value_problems(
        {node["host"]: node["url"] for node in registering},
        "OmniBoxes node URL",
        "the master tells nodes apart by URL; set omniboxes_advertise_ip (or omniboxes_node_port) per host",
    )
    return problems


def omniboxes_services(settings: dict) -> list[dict]:
    """The services of one host, from its mode: the master (modes master, both); instance servers, the unit that
    starts them in batches at boot and the node server (modes worker, both); the registrar (mode worker only:
    upstream's master knows a local node in mode both by its static --nodes URL).

    settings: is_master, is_worker, python, pythonpath, environment, user, work_dir, helper, restart,
    restart_sec, enabled, watch (code and requirements), helper_watch, master_port, master_workers,
    master_redis_host, master_redis_port, node_port, node_workers, redis_port, instance_ports,
    instance_start_timeout, max_parallel, advertise_url, registry_hostname, api_key, registry_ttl,
    heartbeat_seconds, registrar_check_seconds.
    """
    s = settings
    python, helper = s["python"], s["helper"]
    pool_unit = f"redis-server@{s['redis_port']}"
    environment = {"PYTHONUNBUFFERED": "1", **({"PYTHONPATH": s["pythonpath"]} if s["pythonpath"] else {}),
                   **{str(k): str(v) for k, v in (s.get("environment") or {}).items()}}
    common = {"environment": environment, "user": s["user"], "working_directory": s["work_dir"],
              "restart": s["restart"], "restart_sec": int(s["restart_sec"]), "watch": list(s["watch"])}
    api_key = {"x-api-key": s["api_key"]}
    services = []
    if s["is_worker"]:
        for port in s["instance_ports"]:
            services.append({
                **common, "name": f"omniboxes-instance@{port}",
                "description": f"OmniBoxes instance server on port {port}",
                "argv": [python, "-m", "omniboxes.node.instance_server", "--port", str(port),
                         "--redis_host", "127.0.0.1", "--redis_port", str(s["redis_port"])],
                # Restarting or stopping the pool's Redis does the same to the instance servers, which then add
                # their ports again: the pool is rebuilt from the processes that really run. So does stopping or
                # restarting omniboxes-instances, their batch starter.
                "requires": [pool_unit], "part_of": [pool_unit, "omniboxes-instances"], "after": [pool_unit],
                "ports": [port], "health": {"tcp": f"127.0.0.1:{port}"},
                # Started by omniboxes-instances at boot, a batch at a time; a start counts once the port answers.
                "enabled": False,
                "service_options": {
                    "ExecStartPost": f"/usr/bin/python3 {helper} wait-port {port} --timeout "
                                     f"{s['instance_start_timeout']}",
                    "TimeoutStartSec": int(s["instance_start_timeout"]) + 10},
            })
        services.append({
            "name": "omniboxes-instances",
            "description": f"Start the OmniBoxes instance servers, {s['max_parallel']} at a time",
            "argv": ["/usr/bin/python3", helper, "start-instances", "--first", str(s["instance_ports"][0]),
                     "--count", str(len(s["instance_ports"])), "--parallel", str(s["max_parallel"])],
            "type": "oneshot", "restart": "no", "enabled": bool(s["enabled"]), "watch": list(s["helper_watch"]),
            "after": [f"omniboxes-instance@{port}" for port in s["instance_ports"]] + [pool_unit],
            "wants": [pool_unit],
            # No ExecStop that stops the instances: it would wait for their stop jobs, which wait for this unit's
            # own stop to end (they start before it), until systemd's stop timeout. PartOf above does it.
            "service_options": {"RemainAfterExit": True, "TimeoutStartSec": "infinity"},
        } if s["instance_ports"] else None)
        services.append({
            **common, "name": "omniboxes-node",
            "description": f"OmniBoxes node server on port {s['node_port']}",
            "argv": [python, "-m", "omniboxes.node.server", "--port", str(s["node_port"]), "--workers",
                     str(s["node_workers"]), "--redis_host", "127.0.0.1", "--redis_port", str(s["redis_port"])],
            # A node started by hand (or at boot) brings its registrar along, which registers it once it answers.
            "after": ["omniboxes-instances", pool_unit],
            "wants": ["omniboxes-instances", pool_unit] + ([] if s["is_master"] else ["omniboxes-registrar"]),
            "ports": [int(s["node_port"])], "enabled": bool(s["enabled"]),
            "health": {"http": f"http://127.0.0.1:{s['node_port']}/info", "headers": api_key},
        })
    if s["is_worker"] and not s["is_master"]:
        services.append({
            "name": "omniboxes-registrar",
            "description": "Register this OmniBoxes node in the master's registry while it answers /info",
            "argv": ["/usr/bin/python3", helper, "register", "--node-url", f"http://127.0.0.1:{s['node_port']}",
                     "--advertise-url", s["advertise_url"], "--hostname", s["registry_hostname"],
                     "--redis-host", s["master_redis_host"], "--redis-port", str(s["master_redis_port"]),
                     "--api-key", s["api_key"], "--ttl", str(s["registry_ttl"]),
                     "--heartbeat-seconds", str(s["heartbeat_seconds"]),
                     "--check-seconds", str(s["registrar_check_seconds"])],
            "user": s["user"], "watch": list(s["helper_watch"]), "enabled": bool(s["enabled"]),
            # Stopping or restarting the node does the same to the registrar, which deletes the key on its way
            # out. It holds no browsers, only the key, so omniboxes_disable_recovery leaves it alone.
            "part_of": ["omniboxes-node"], "after": ["omniboxes-node"], "restart": "always", "restart_sec": 2,
        })
    if s["is_master"]:
        argv = [python, "-m", "omniboxes.master.server", "--port", str(s["master_port"]), "--workers",
                str(s["master_workers"]), "--redis-host", s["master_redis_host"], "--redis-port",
                str(s["master_redis_port"]), "--redis-registry"]
        if s["is_worker"]:
            argv += ["--nodes", f"http://localhost:{s['node_port']}"]
        registry_unit = f"redis-server@{s['master_redis_port']}"
        services.append({
            **common, "name": "omniboxes-master",
            "description": f"OmniBoxes master API on port {s['master_port']}",
            "argv": argv, "wants": [registry_unit],
            "after": [registry_unit] + (["omniboxes-node"] if s["is_worker"] else []),
            "ports": [int(s["master_port"])], "enabled": bool(s["enabled"]),
            "health": {"tcp": f"127.0.0.1:{s['master_port']}"},
        })
    return [service for service in services if service]


class FilterModule:
    def filters(self):
        return {"omniboxes_host_problems": omniboxes_host_problems,
                "omniboxes_services": omniboxes_services, "omniboxes_topology_problems": omniboxes_topology_problems}
