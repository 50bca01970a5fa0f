"""Every GeoMX (MXNet ps-lite) process and its full DMLC_* environment, computed from one topology.

Two tiers (GeoMX): a central party runs the global scheduler, the global server(s), its local scheduler
and the master worker (and optionally workers of its own); every other party runs a local scheduler,
local server(s) and workers. One tier (vanilla MXNet KVStore dist_sync): a scheduler, servers, workers.
The variables each process gets, and their values, follow GeoMX's summary table and its
pseudo-distributed script (scripts/cpu/run_vanilla_hips.sh).
"""

from __future__ import annotations

SCHEDULER_PROGRAM = 'python -c "import mxnet"'


def _common(topology: dict) -> dict:
    return {"PS_VERBOSE": str(topology.get("verbose", 1)), "DMLC_INTERFACE": topology.get("interface", "eth0")}


def _local(address: str, port: int, servers: int, workers: int) -> dict:
    return {"DMLC_PS_ROOT_URI": address, "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": str(servers),
            "DMLC_NUM_WORKER": str(workers)}


def _process(name, host, party, kind, env, program):
    return {"name": name, "host": host, "party": party, "kind": kind, "env": env, "program": program}


def _worker_program(topology: dict, slice_index: int | None) -> str:
    program = topology.get("worker_program", "python train.py")
    return program if slice_index is None else f"{program} --data-slice-idx {slice_index}"


def geomx_topology_problems(topology: dict) -> list[str]:
    """One sentence per inconsistency, each with its fix; empty when the topology is sound."""
    problems = []
    if topology.get("mode", "geomx") == "single":
        single = topology.get("single") or {}
        for key in ("servers", "workers"):
            if int(single.get(key, 0)) < 1:
                problems.append(f"the single-tier cluster has {single.get(key, 0)} {key}; fix: give it at least one")
        return problems
    central = topology.get("central")
    if not central:
        return ["there is no central party (global scheduler, global server, master worker); fix: define central"]
    parties = topology.get("parties") or []
    if not parties:
        problems.append("there are no parties besides the central one; fix: add at least one party with workers")
    names = [p.get("name", "") for p in parties]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"two parties are named {name}; fix: give each party its own name")
    if int(central.get("global_servers", 1)) < 1:
        problems.append("the central party has no global server; fix: set global_servers to 1 or more")
    for party in parties:
        for key in ("workers", "servers"):
            if int(party.get(key, 1 if key == "servers" else 0)) < 1:
                problems.append(f"party {party.get('name')} has no {key[:-1]}; fix: give it at least one")
    # Every scheduler binds a port on its address; two on one address:port would capture each other's nodes.
    binds: dict = {}
    central_address = central.get("address", "127.0.0.1")
    global_address = central.get("global_address", central_address)
    for owner, address, port in (
        [("the global scheduler", global_address, central.get("global_scheduler_port", 9092)),
         ("the central party's scheduler", central_address, central.get("scheduler_port", 9093))]
        + [(f"party {p.get('name')}'s scheduler", p.get("address", "127.0.0.1"), p.get("scheduler_port"))
           for p in parties]
    ):
        if port is None:
            problems.append(f"{owner} has no port; fix: set scheduler_port")
            continue
        key = (address, int(port))
        if key in binds:
            problems.append(f"{owner} and {binds[key]} both bind {address}:{port}, so the workers of one would join "
                            "the other; fix: give each scheduler its own port on a shared address")
        else:
            binds[key] = owner
    return problems


def geomx_processes(topology: dict) -> list[dict]:
    """Every process: name, host, party, kind, env (DMLC_* and PS_VERBOSE, all strings) and program.

    Raises ValueError with the problems of geomx_topology_problems when the topology is inconsistent.
    """
    problems = geomx_topology_problems(topology)
    if problems:
        raise ValueError("; ".join(problems))
    common = _common(topology)
    if topology.get("mode", "geomx") == "single":
        single = topology["single"]
        local = _local(single.get("address", "127.0.0.1"), single.get("scheduler_port", 9092),
                       int(single["servers"]), int(single["workers"]))
        host = single.get("host", "localhost")
        processes = [_process("scheduler", host, "single", "scheduler",
                              {"DMLC_ROLE": "scheduler", **local, **common}, SCHEDULER_PROGRAM)]
        processes += [_process(f"server{i}", host, "single", "server", {"DMLC_ROLE": "server", **local, **common},
                               SCHEDULER_PROGRAM) for i in range(int(single["servers"]))]
        processes += [_process(f"worker{i}", host, "single", "worker", {"DMLC_ROLE": "worker", **local, **common},
                               _worker_program(topology, i)) for i in range(int(single["workers"]))]
        return processes

    central, parties = topology["central"], topology["parties"]
    central_address = central.get("address", "127.0.0.1")
    central_host = central.get("host", "localhost")
    central_workers = int(central.get("workers", 0))
    global_servers = int(central.get("global_servers", 1))
    all_workers = sum(int(p["workers"]) for p in parties) + central_workers
    global_env = {"DMLC_PS_GLOBAL_ROOT_URI": central.get("global_address", central_address),
                  "DMLC_PS_GLOBAL_ROOT_PORT": str(central.get("global_scheduler_port", 9092)),
                  "DMLC_NUM_GLOBAL_SERVER": str(global_servers),
                  # The global tier's workers are the parties' local servers.
                  "DMLC_NUM_GLOBAL_WORKER": str(sum(int(p.get("servers", 1)) for p in parties))}
    central_local = _local(central_address, central.get("scheduler_port", 9093), global_servers, 1 + central_workers)

    processes = [
        _process("global-scheduler", central_host, "central", "global_scheduler",
                 {"DMLC_ROLE_GLOBAL": "global_scheduler", **global_env, **common}, SCHEDULER_PROGRAM),
        _process("central-scheduler", central_host, "central", "scheduler",
                 {"DMLC_ROLE": "scheduler", **central_local, **common}, SCHEDULER_PROGRAM),
    ]
    processes += [
        _process(f"global-server{i}", central_host, "central", "global_server",
                 {"DMLC_ROLE_GLOBAL": "global_server", **global_env, "DMLC_ROLE": "server", **central_local,
                  "DMLC_ENABLE_CENTRAL_WORKER": "1" if central_workers else "0",
                  "DMLC_NUM_ALL_WORKER": str(all_workers), **common}, SCHEDULER_PROGRAM)
        for i in range(global_servers)]
    worker_env = {"DMLC_ROLE": "worker", **central_local, "DMLC_NUM_ALL_WORKER": str(all_workers), **common}
    processes.append(_process("master-worker", central_host, "central", "master_worker",
                              {**worker_env, "DMLC_ROLE_MASTER_WORKER": "1"}, _worker_program(topology, None)))
    # Data slices are numbered across every training worker, party after party.
    next_slice = 0
    for i in range(central_workers):
        processes.append(_process(f"central-worker{i}", central_host, "central", "worker", dict(worker_env),
                                  _worker_program(topology, next_slice)))
        next_slice += 1
    for party in parties:
        name, host = party["name"], party.get("host", "localhost")
        local = _local(party.get("address", "127.0.0.1"), party["scheduler_port"], int(party.get("servers", 1)),
                       int(party["workers"]))
        processes.append(_process(f"{name}-scheduler", host, name, "scheduler",
                                  {"DMLC_ROLE": "scheduler", **local, **common}, SCHEDULER_PROGRAM))
        processes += [_process(f"{name}-server{i}", host, name, "server",
                               {**global_env, "DMLC_ROLE": "server", **local, **common}, SCHEDULER_PROGRAM)
                      for i in range(int(party.get("servers", 1)))]
        for i in range(int(party["workers"])):
            processes.append(_process(f"{name}-worker{i}", host, name, "worker",
                                      {"DMLC_ROLE": "worker", **local, "DMLC_NUM_ALL_WORKER": str(all_workers),
                                       **common}, _worker_program(topology, next_slice)))
            next_slice += 1
    return processes


class FilterModule:
    def filters(self):
        return {"geomx_processes": geomx_processes, "geomx_topology_problems": geomx_topology_problems}
