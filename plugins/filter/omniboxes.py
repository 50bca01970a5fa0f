"""OmniBoxes: cross-host checks of an inventory, and a host's processes as service declarations."""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import shared_value_problems

# Addresses that only the host itself reaches.
_LOCAL_ONLY = re.compile(r"^(127[.]|0[.]0[.]0[.]0$|localhost$)")
SOURCE_VARIABLES = {"pip": "omniboxes_pip_spec", "git": "omniboxes_git_repo", "path": "omniboxes_local_path"}
# What a path source copies besides omniboxes/: what pip needs to build the project (setup.py reads README.md).
PROJECT_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE.txt", "LICENSE")
METADATA_FILES = ("setup.py", "setup.cfg", "pyproject.toml")
# A requirement's name and extras: `webgym[omnibox] @ git+...`, `webgym[omnibox,train]==1.0`.
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
BROWSERS = {"playwright": "Playwright's own Chromium (playwright install --with-deps chromium)",
            "system": "Debian's chromium package", "path": "the Chromium at omniboxes_browser_executable",
            "none": "no browser (omniboxes_browser none)"}


def omniboxes_project(path: str, code_dir: str = "") -> dict:
    """A path source on the controller: the project files it has beside omniboxes/, the copies to code_dir on the
    host (layout files: those files and omniboxes/), and a digest of its build metadata (a change reinstalls the
    package, since an editable install reads only its code from there)."""
    if not path:
        return {"files": [], "copies": [], "digest": ""}
    files = [name for name in PROJECT_FILES if os.path.isfile(os.path.join(path, name))]
    digest = hashlib.sha256()
    for name in files:
        if name in METADATA_FILES:
            with open(os.path.join(path, name), "rb") as handle:
                digest.update(name.encode() + b"\0" + handle.read())
    copies = [{"src": os.path.join(path, name), "dest": os.path.join(code_dir, name)} for name in [*files, "omniboxes"]]
    return {"files": files, "copies": copies, "digest": digest.hexdigest()[:16]}


def omniboxes_requirements(settings: dict) -> list[str]:
    """The requirement lines of the servers' environment: the package with its extra, a comment naming the source's
    revision (a new one reinstalls), then the user's additions.

    settings: source, pip_spec, code_dir, extra, revision (the git commit or the path source's digest), packages."""
    s = settings
    if s["source"] == "pip":
        package = [s["pip_spec"]]
    else:
        package = [f"-e {s['code_dir']}[{s['extra']}]"]
        package += [f"# source revision {s['revision']}"] if s["revision"] else []
    return package + list(s["packages"])


def omniboxes_host_problems(settings: dict) -> list[str]:
    """What is wrong with one host's OmniBoxes settings, each with its fix (the caller prefixes the host)."""
    s = settings
    worker, master = s["is_worker"], s["is_master"]
    problems = []
    if worker and int(s["instances"]) < 1:
        problems.append(f"omniboxes_instances is {s['instances']} but the host is in {s['worker_group']}; fix: set it "
                        "to the number of browser instances (the launcher's NUM_INSTANCES)")
    if worker and not master and (not s["advertise_ip"] or _LOCAL_ONLY.match(s["advertise_ip"])):
        problems.append(f"the node would register as {s['advertise_url']}, which the master cannot reach; fix: set "
                        "omniboxes_advertise_ip to an address the master reaches (or cluster_address_ip)")
    given, addresses = s.get("advertise_given", ""), s.get("host_addresses", [])
    if worker and given and addresses and given not in addresses and not _LOCAL_ONLY.match(given):
        problems.append(f"omniboxes_advertise_ip {given} is on no interface of this host ({', '.join(addresses)}); "
                        "fix: set it to one of them, or leave it empty to advertise the cluster address")
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
    elif s["source"] == "path" and not set(METADATA_FILES) & set(omniboxes_project(source)["files"]):
        problems.append(f"omniboxes_local_path {source} has no setup.py or pyproject.toml, so its package and "
                        f"extra '{s['extra']}' cannot be installed; fix: point it at the root of a webgym checkout")
    elif s["source"] == "pip":
        match = _REQUIREMENT.match(source)
        extras = [e.strip() for e in (match.group(2) or "").split(",")] if match else []
        if s["extra"] not in extras:
            fixed = (f"{match.group(1)}[{','.join([e for e in extras if e] + [s['extra']])}]{source[match.end():]}"
                     if match else f"webgym[{s['extra']}] @ ...")
            problems.append(f"omniboxes_pip_spec {source!r} does not ask for the extra '{s['extra']}', so upstream's "
                            f"server requirements would not be installed; fix: write it as {fixed!r}")
    if worker and s["browser"] == "path" and not s["browser_executable"].startswith("/"):
        problems.append(f"omniboxes_browser is path but omniboxes_browser_executable is "
                        f"{s['browser_executable'] or 'empty'}; fix: set it to the absolute path of a Chromium on "
                        "the host (or use omniboxes_browser system)")
    if "PLAYWRIGHT_BROWSERS_PATH" in s["environment"]:
        problems.append("omniboxes_environment sets PLAYWRIGHT_BROWSERS_PATH, which gymfleet sets from "
                        "omniboxes_browsers_path; fix: set omniboxes_browsers_path instead")
    return problems


def omniboxes_browser_plan(hosts: list[dict]) -> list[str]:
    """One line per worker: the browser it will run. hosts: host, worker, browser, executable (the preflight's
    topology entries)."""
    lines = []
    for host in hosts:
        if host["worker"]:
            where = f" ({host['executable']})" if host["browser"] in ("system", "path") else ""
            lines.append(f"host {host['host']}: {BROWSERS[host['browser']]}{where}")
    return lines


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


def omniboxes_port_claims(settings: dict) -> list[dict]:
    """The ports this host's OmniBoxes processes listen on, as claims for the preflight port plan: a worker's
    instance servers (a range), node server and pool Redis; the master's API and registry Redis.

    settings: is_worker, is_master, instances, instance_start_port, node_port, redis_port, master_port,
    master_redis_port."""
    claims = []
    if settings["is_worker"] and int(settings["instances"]) > 0:
        first = int(settings["instance_start_port"])
        claims += [
            {"component": "omniboxes instance servers",
             "variable": "omniboxes_instance_start_port + omniboxes_instances",
             "ports": [first, first + int(settings["instances"]) - 1]},
            {"component": "omniboxes node server", "variable": "omniboxes_node_port", "ports": settings["node_port"]},
            {"component": "omniboxes pool redis", "variable": "omniboxes_redis_port", "ports": settings["redis_port"]},
        ]
    if settings["is_master"]:
        claims += [
            {"component": "omniboxes master", "variable": "omniboxes_master_port", "ports": settings["master_port"]},
            {"component": "omniboxes registry redis", "variable": "omniboxes_master_redis_port",
             "ports": settings["master_redis_port"]},
        ]
    return claims


def omniboxes_services(settings: dict) -> list[dict]:
    """The services of one host, from its mode: the check of the package (and on a worker of the browser) that the
    master and instance servers require; the master (modes master, both); instance servers, the unit that
    starts them in batches at boot and the node server (modes worker, both); the registrar (mode worker only:
    upstream's master knows a local node in mode both by its static --nodes URL).

    settings: is_master, is_worker, python, environment, user, work_dir, helper, check, extra, browser,
    browser_executable, browsers_path, browser_check_timeout, start_timeout, check_state, restart,
    restart_sec, enabled, watch (code and requirements), helper_watch, master_port, master_workers,
    master_redis_host, master_redis_port, node_port, node_workers, redis_port, instance_ports,
    instance_start_timeout, max_parallel, advertise_url, registry_hostname, api_key, registry_ttl,
    heartbeat_seconds, registrar_check_seconds.
    """
    s = settings
    python, helper = s["python"], s["helper"]
    pool_unit = f"redis-server@{s['redis_port']}"
    environment = {"PYTHONUNBUFFERED": "1", "PLAYWRIGHT_BROWSERS_PATH": s["browsers_path"],
                   **{str(k): str(v) for k, v in (s.get("environment") or {}).items()}}
    common = {"environment": environment, "user": s["user"], "working_directory": s["work_dir"],
              "restart": s["restart"], "restart_sec": int(s["restart_sec"]), "watch": list(s["watch"])}
    api_key = {"x-api-key": s["api_key"]}
    browser = s["browser"] if s["is_worker"] else "none"
    # Run once before the master and the instance servers (Requires=, so they do not start when it fails, at boot
    # too): the package with its extra and, on a worker, the browser, launched once. As root: it links or
    # downloads the browser, then launches it as the servers' user.
    check = {
        "name": "omniboxes-check",
        "description": "Check the OmniBoxes package" + (" and launch its browser once" if browser != "none" else ""),
        "argv": ["/usr/bin/python3", s["check"], "--python", python, "--extra", s["extra"], "--browser", browser,
                 "--executable", s["browser_executable"] if browser in ("system", "path") else "",
                 "--browsers-path", s["browsers_path"], "--user", s["user"],
                 "--timeout", str(s["browser_check_timeout"]), "--install-timeout", str(s["start_timeout"]),
                 "--state", s["check_state"]],
        "type": "oneshot", "restart": "no", "enabled": False, "watch": list(s["watch"]),
        "service_options": {"RemainAfterExit": True, "TimeoutStartSec": int(s["start_timeout"])},
    }
    services = [check]
    if s["is_worker"]:
        for port in s["instance_ports"]:
            services.append({
                **common, "name": f"omniboxes-instance@{port}",
                "description": f"OmniBoxes instance server on port {port}",
                "argv": [python, "-m", "omniboxes.node.instance_server", "--port", str(port),
                         "--redis_host", "127.0.0.1", "--redis_port", str(s["redis_port"])],
                # Not bound to the pool's Redis: when it restarts, omniboxes-pool adds their ports back, and the
                # browsers (and a client's lease) live on. Stopping or restarting omniboxes-instances, their batch
                # starter, does the same to them.
                "requires": ["omniboxes-check"], "wants": [pool_unit], "part_of": ["omniboxes-instances"],
                "after": [pool_unit, "omniboxes-check"],
                # /info, not the port alone: another program holding the port must not pass for the server.
                "ports": [port], "health": {"http": f"http://127.0.0.1:{port}/info", "headers": api_key},
                # Started by omniboxes-instances at boot, a batch at a time; a start counts once the port answers.
                "enabled": False,
                "service_options": {
                    # With the server's PID, so a server that dies before it listens fails the start at once.
                    "ExecStartPost": f"/usr/bin/python3 {helper} wait-port {port} --pid $MAINPID --timeout "
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
            "name": "omniboxes-pool",
            "description": "Add the OmniBoxes instance servers' ports back when the pool's Redis restarts",
            "argv": ["/usr/bin/python3", helper, "keep-pool", "--redis-port", str(s["redis_port"]),
                     "--first", str(s["instance_ports"][0]), "--count", str(len(s["instance_ports"])),
                     "--api-key", s["api_key"]],
            "user": s["user"], "watch": list(s["helper_watch"]), "enabled": bool(s["enabled"]),
            # It holds no browsers, only watches Redis, so omniboxes_disable_recovery leaves it alone.
            "wants": [pool_unit], "after": [pool_unit], "restart": "always", "restart_sec": 2,
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
            "description": "Register this OmniBoxes node in the master's registry while it starts or answers /info",
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
            "argv": argv, "wants": [registry_unit], "requires": ["omniboxes-check"],
            # Beside the instance servers, not after the node: upstream's master reads the registry once it has
            # started and every 10 s after, and asks a node found there for /info only at its next turn, 10 s
            # later. Its own start then overlaps the nodes' (CPU-bound, many seconds on a busy host) and its
            # first reads find the workers, whose registrars register them as soon as their node servers start.
            "after": [registry_unit, "omniboxes-check"],
            "ports": [int(s["master_port"])], "enabled": bool(s["enabled"]),
            "health": {"tcp": f"127.0.0.1:{s['master_port']}"},
        })
    return [service for service in services if service]


def omniboxes_flush_summary(registry: dict | None, pool: dict | None, check: bool = False) -> str:
    """One line of what a flush removed (or would): the registry keys on a master (module omniboxes_registry's
    result), the pool's available and in-use ports on a node (module omniboxes_pool's); None for a part the host
    does not have."""
    parts = []
    if registry is not None:
        parts.append(f"registry keys {', '.join(registry.get('removed') or []) or 'none'}")
    if pool is not None:
        before = pool.get("before") or {}
        parts.append(f"pool available={','.join(map(str, before.get('available') or [])) or 'none'} "
                     f"in_use={','.join(map(str, before.get('in_use') or [])) or 'none'}")
    return f"{'would flush' if check else 'flushed'}: {'; '.join(parts)}"


class FilterModule:
    def filters(self):
        return {"omniboxes_host_problems": omniboxes_host_problems, "omniboxes_project": omniboxes_project,
                "omniboxes_requirements": omniboxes_requirements, "omniboxes_browser_plan": omniboxes_browser_plan,
                "omniboxes_services": omniboxes_services, "omniboxes_topology_problems": omniboxes_topology_problems,
                "omniboxes_port_claims": omniboxes_port_claims, "omniboxes_flush_summary": omniboxes_flush_summary}
