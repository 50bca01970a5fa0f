"""Every GeoMX (MXNet ps-lite) process and its full DMLC_* environment, computed from one topology.

Two tiers (GeoMX): a central party runs the global scheduler, the global server(s), its local scheduler
and the master worker (and optionally workers of its own); every other party runs a local scheduler,
local server(s) and workers. One tier (vanilla MXNet KVStore dist_sync): a scheduler, servers, workers.
The variables each process gets, and their values, follow GeoMX's summary table and its
pseudo-distributed script (scripts/cpu/run_vanilla_hips.sh).

Servers and workers are a count (all on the group's host) or a list of hosts, one process per entry.
"""

from __future__ import annotations

import difflib
import ipaddress

# The keys of each part of a topology: any other is a misspelling, which would otherwise be ignored.
TOPOLOGY_KEYS = ("mode", "python", "worker_program", "verbose", "interface", "central", "parties", "single",
                 "host_addresses")
CENTRAL_KEYS = ("host", "address", "global_address", "global_scheduler_port", "scheduler_port", "global_servers",
                "workers")
PARTY_KEYS = ("name", "host", "address", "scheduler_port", "servers", "workers")
SINGLE_KEYS = ("host", "address", "scheduler_port", "servers", "workers")


def _scheduler_program(topology: dict) -> str:
    # Importing mxnet with DMLC_ROLE scheduler or server runs that node until the job ends (the guide's way).
    return f'{topology.get("python", "python")} -c "import mxnet"'


def _worker_program(topology: dict, slice_index: int | None) -> str:
    program = topology.get("worker_program", "python train.py")
    return program if slice_index is None else f"{program} --data-slice-idx {slice_index}"


def _placements(value, host: str) -> list[str]:
    """The host of each process: a count puts them all on the group's host."""
    if isinstance(value, (list, tuple)):
        return [str(h) for h in value]
    return [host] * int(value or 0)


def _common(topology: dict) -> dict:
    return {"PS_VERBOSE": str(topology.get("verbose", 1)), "DMLC_INTERFACE": topology.get("interface", "eth0")}


def _local(address: str, port: int, servers: int, workers: int) -> dict:
    return {"DMLC_PS_ROOT_URI": address, "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": str(servers),
            "DMLC_NUM_WORKER": str(workers)}


def _process(name, host, party, kind, env, program):
    return {"name": name, "host": host, "party": party, "kind": kind, "env": env, "program": program}


def _schedulers(topology: dict) -> list[dict]:
    """Each scheduler: who it is, where it runs, the address its members dial, and the hosts of its members."""
    if topology.get("mode", "geomx") == "single":
        single = topology.get("single") or {}
        host = single.get("host", "localhost")
        return [{"owner": "the scheduler", "key": "single.address", "host": host,
                 "address": single.get("address", "127.0.0.1"), "port": single.get("scheduler_port", 9092),
                 "members": _placements(single.get("servers", 1), host) + _placements(single.get("workers"), host)}]
    central, parties = topology["central"], topology.get("parties") or []
    host = central.get("host", "localhost")
    address = central.get("address", "127.0.0.1")
    global_servers = _placements(central.get("global_servers", 1), host)
    return [
        {"owner": "the global scheduler", "key": "central.global_address", "host": host,
         "address": central.get("global_address", address), "port": central.get("global_scheduler_port", 9092),
         "members": global_servers + [h for p in parties
                                      for h in _placements(p.get("servers", 1), p.get("host", "localhost"))]},
        {"owner": "the central party's scheduler", "key": "central.address", "host": host, "address": address,
         "port": central.get("scheduler_port", 9093),
         "members": global_servers + [host] + _placements(central.get("workers", 0), host)},
    ] + [
        {"owner": f"party {p.get('name')}'s scheduler", "key": f"the address of party {p.get('name')}",
         "host": p.get("host", "localhost"), "address": p.get("address", "127.0.0.1"),
         "port": p.get("scheduler_port"),
         "members": _placements(p.get("servers", 1), p.get("host", "localhost"))
         + _placements(p.get("workers"), p.get("host", "localhost"))}
        for p in parties]


def _unknown_keys(where: str, part, known: tuple) -> list[str]:
    if not isinstance(part, dict):
        return []
    problems = []
    for key in sorted(set(part) - set(known), key=str):
        near = difflib.get_close_matches(str(key), known, n=1)
        fix = f"write {near[0]}" if near else f"remove it (known keys: {', '.join(known)})"
        problems.append(f"{where} has an unknown key {key!r}, which would be ignored; fix: {fix}")
    return problems


def geomx_topology_problems(topology: dict) -> list[str]:
    """One sentence per inconsistency, each with its fix; empty when the topology is sound."""
    problems = _unknown_keys("the topology", topology, TOPOLOGY_KEYS) \
        + _unknown_keys("the single-tier cluster", topology.get("single"), SINGLE_KEYS) \
        + _unknown_keys("the central party", topology.get("central"), CENTRAL_KEYS) \
        + [p for i, party in enumerate(topology.get("parties") or [])
           for p in _unknown_keys(f"party {party.get('name', i) if isinstance(party, dict) else i}", party,
                                  PARTY_KEYS)]
    if problems:
        return problems
    if topology.get("mode", "geomx") == "single":
        single = topology.get("single") or {}
        for key, default in (("servers", 1), ("workers", 0)):
            if not _placements(single.get(key, default), "-"):
                problems.append(f"the single-tier cluster has no {key[:-1]}; fix: give it at least one")
        return problems + _scheduler_problems(topology)
    central = topology.get("central")
    if not central:
        return ["there is no central party (global scheduler, global server, master worker); fix: define central"]
    parties = topology.get("parties") or []
    if not parties:
        problems.append("there are no parties besides the central one; fix: add at least one party with workers")
    names = [p.get("name", "") for p in parties]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"two parties are named {name}; fix: give each party its own name")
    if not _placements(central.get("global_servers", 1), "-"):
        problems.append("the central party has no global server; fix: set global_servers to 1 or more")
    for party in parties:
        for key, default in (("workers", 0), ("servers", 1)):
            if not _placements(party.get(key, default), "-"):
                problems.append(f"party {party.get('name')} has no {key[:-1]}; fix: give it at least one")
        servers = len(_placements(party.get("servers", 1), "-"))
        if servers > 1:
            # ps-lite's postoffice.cc: CHECK_EQ(num_servers_, 1), "load balance at the first layer is not supported".
            problems.append(f"party {party.get('name')} has {servers} local servers, but GeoMX runs exactly one per "
                            "party (ps-lite refuses more at start: load balance at the first layer is not supported); "
                            "fix: set its servers to 1")
    return problems + _scheduler_problems(topology)


def _scheduler_problems(topology: dict) -> list[str]:
    problems = []
    schedulers = _schedulers(topology)
    # ps-lite's scheduler binds its port on every interface, so two schedulers on one host clash by port alone.
    binds: dict = {}
    for scheduler in schedulers:
        owner, host, port = scheduler["owner"], scheduler["host"], scheduler["port"]
        if port is None:
            problems.append(f"{owner} has no port; fix: set scheduler_port")
        elif (host, int(port)) in binds:
            problems.append(f"{owner} and {binds[host, int(port)]} both bind port {port} on {host}; fix: give each "
                            "scheduler on a host its own port")
        else:
            binds[host, int(port)] = owner
    # host -> its addresses and subnets (cluster address, bridge subnet), as the inventory knows them.
    known = topology.get("host_addresses") or {}
    for scheduler in schedulers:
        owner, host, address = scheduler["owner"], scheduler["host"], scheduler["address"]
        if _is_loopback(address):
            remote = sorted(set(scheduler["members"]) - {host})
            if remote:
                problems.append(f"{owner} is at {address} but its members on {', '.join(remote)} cannot reach "
                                f"{host}'s loopback; fix: set {scheduler['key']} to an address of {host} that they "
                                "reach")
            continue
        if host not in known or _on_host(address, known[host]):
            continue
        other = next((h for h, entries in known.items() if h != host and _on_host(address, entries)), None)
        if other is not None:
            there = [s["owner"] for s in schedulers if s["host"] == other]
            problems.append(f"{owner} runs on {host} but its address {address} belongs to {other}, so its servers "
                            f"and workers would dial {other}{' (' + ', '.join(there) + ')' if there else ''} "
                            f"instead; fix: set {scheduler['key']} to an address of {host} "
                            f"({', '.join(known[host])})")
        else:
            problems.append(f"{owner} runs on {host} but its address {address} is none of {host}'s "
                            f"({', '.join(known[host])}); fix: set {scheduler['key']} to one of them")
    return problems


def _on_host(address: str, entries: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address in entries
    return any(ip in ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def geomx_processes(topology: dict) -> list[dict]:
    """Every process: name, host, party, kind, env (DMLC_* and PS_VERBOSE, all strings) and program.

    Schedulers come first, then servers, then workers, which is the order they must start in.
    Raises ValueError with the problems of geomx_topology_problems when the topology is inconsistent.
    """
    problems = geomx_topology_problems(topology)
    if problems:
        raise ValueError("; ".join(problems))
    processes = _single(topology) if topology.get("mode", "geomx") == "single" else _two_tier(topology)
    order = {"global_scheduler": 0, "scheduler": 0, "global_server": 1, "server": 1, "master_worker": 2, "worker": 2}
    return sorted(processes, key=lambda p: order[p["kind"]])  # stable: the guide's order within each kind


def _single(topology: dict) -> list[dict]:
    common, single = _common(topology), topology["single"]
    host = single.get("host", "localhost")
    servers, workers = _placements(single.get("servers", 1), host), _placements(single["workers"], host)
    local = _local(single.get("address", "127.0.0.1"), single.get("scheduler_port", 9092), len(servers), len(workers))
    return ([_process("scheduler", host, "single", "scheduler", {"DMLC_ROLE": "scheduler", **local, **common},
                      _scheduler_program(topology))]
            + [_process(f"server{i}", h, "single", "server", {"DMLC_ROLE": "server", **local, **common},
                        _scheduler_program(topology)) for i, h in enumerate(servers)]
            + [_process(f"worker{i}", h, "single", "worker", {"DMLC_ROLE": "worker", **local, **common},
                        _worker_program(topology, i)) for i, h in enumerate(workers)])


def _two_tier(topology: dict) -> list[dict]:
    common = _common(topology)
    central, parties = topology["central"], topology["parties"]
    central_address = central.get("address", "127.0.0.1")
    central_host = central.get("host", "localhost")
    central_workers = _placements(central.get("workers", 0), central_host)
    global_servers = _placements(central.get("global_servers", 1), central_host)
    all_workers = sum(len(_placements(p["workers"], "-")) for p in parties) + len(central_workers)
    global_env = {"DMLC_PS_GLOBAL_ROOT_URI": central.get("global_address", central_address),
                  "DMLC_PS_GLOBAL_ROOT_PORT": str(central.get("global_scheduler_port", 9092)),
                  "DMLC_NUM_GLOBAL_SERVER": str(len(global_servers)),
                  # The global tier's workers are the parties' local servers.
                  "DMLC_NUM_GLOBAL_WORKER": str(sum(len(_placements(p.get("servers", 1), "-")) for p in parties))}
    # The master worker counts among the central party's workers.
    central_local = _local(central_address, central.get("scheduler_port", 9093), len(global_servers),
                           1 + len(central_workers))
    scheduler = _scheduler_program(topology)

    processes = [
        _process("global-scheduler", central_host, "central", "global_scheduler",
                 {"DMLC_ROLE_GLOBAL": "global_scheduler", **global_env, **common}, scheduler),
        _process("central-scheduler", central_host, "central", "scheduler",
                 {"DMLC_ROLE": "scheduler", **central_local, **common}, scheduler),
    ]
    processes += [
        _process(f"global-server{i}", host, "central", "global_server",
                 {"DMLC_ROLE_GLOBAL": "global_server", **global_env, "DMLC_ROLE": "server", **central_local,
                  "DMLC_ENABLE_CENTRAL_WORKER": "1" if central_workers else "0",
                  "DMLC_NUM_ALL_WORKER": str(all_workers), **common}, scheduler)
        for i, host in enumerate(global_servers)]
    worker_env = {"DMLC_ROLE": "worker", **central_local, "DMLC_NUM_ALL_WORKER": str(all_workers), **common}
    processes.append(_process("master-worker", central_host, "central", "master_worker",
                              {**worker_env, "DMLC_ROLE_MASTER_WORKER": "1"}, _worker_program(topology, None)))
    # Data slices are numbered across every training worker, party after party.
    next_slice = 0
    for i, host in enumerate(central_workers):
        processes.append(_process(f"central-worker{i}", host, "central", "worker", dict(worker_env),
                                  _worker_program(topology, next_slice)))
        next_slice += 1
    for party in parties:
        name, party_host = party["name"], party.get("host", "localhost")
        servers = _placements(party.get("servers", 1), party_host)
        workers = _placements(party["workers"], party_host)
        local = _local(party.get("address", "127.0.0.1"), party["scheduler_port"], len(servers), len(workers))
        processes.append(_process(f"{name}-scheduler", party_host, name, "scheduler",
                                  {"DMLC_ROLE": "scheduler", **local, **common}, scheduler))
        processes += [_process(f"{name}-server{i}", host, name, "server",
                               {**global_env, "DMLC_ROLE": "server", **local, **common}, scheduler)
                      for i, host in enumerate(servers)]
        for i, host in enumerate(workers):
            processes.append(_process(f"{name}-worker{i}", host, name, "worker",
                                      {"DMLC_ROLE": "worker", **local, "DMLC_NUM_ALL_WORKER": str(all_workers),
                                       **common}, _worker_program(topology, next_slice)))
            next_slice += 1
    return processes


def geomx_with_addresses(topology: dict, host_addresses: dict) -> dict:
    """The topology with every scheduler address it leaves out taken from its host (the first of that host's
    addresses, its cluster address), and host_addresses set for the address checks."""
    resolved = {**topology, "host_addresses": {**host_addresses, **(topology.get("host_addresses") or {})}}

    def with_address(group: dict) -> dict:
        entries = host_addresses.get(group.get("host", "localhost")) or []
        return group if "address" in group or not entries else {**group, "address": entries[0]}

    for key in ("central", "single"):
        if isinstance(topology.get(key), dict):
            resolved[key] = with_address(topology[key])
    if isinstance(topology.get("parties"), list):
        resolved["parties"] = [with_address(p) if isinstance(p, dict) else p for p in topology["parties"]]
    return resolved


def geomx_hosts(topology: dict) -> list[str]:
    """Every host the topology places a process on."""
    schedulers = _schedulers(topology) if topology.get("central") or topology.get("mode") == "single" else []
    return sorted({s["host"] for s in schedulers} | {h for s in schedulers for h in s["members"]})


class FilterModule:
    def filters(self):
        return {"geomx_processes": geomx_processes, "geomx_topology_problems": geomx_topology_problems,
                "geomx_with_addresses": geomx_with_addresses, "geomx_hosts": geomx_hosts}
