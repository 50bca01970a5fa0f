"""GeoMX's process environments, value for value against the guide's pseudo-distributed script
(scripts/cpu/run_vanilla_hips.sh: 12 processes on 127.0.0.1), and the inconsistent topologies."""

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.geomx import (
    geomx_hosts,
    geomx_processes,
    geomx_topology_problems,
    geomx_with_addresses,
)

PSEUDO = {
    "interface": "eth0", "verbose": 1, "worker_program": "python cnn.py --cpu",
    "central": {"address": "127.0.0.1", "global_scheduler_port": 9092, "scheduler_port": 9093, "global_servers": 1},
    "parties": [{"name": "A", "address": "127.0.0.1", "scheduler_port": 9094, "servers": 1, "workers": 2},
                {"name": "B", "address": "127.0.0.1", "scheduler_port": 9095, "servers": 1, "workers": 2}],
}
COMMON = {"PS_VERBOSE": "1", "DMLC_INTERFACE": "eth0"}
GLOBAL = {"DMLC_PS_GLOBAL_ROOT_URI": "127.0.0.1", "DMLC_PS_GLOBAL_ROOT_PORT": "9092", "DMLC_NUM_GLOBAL_SERVER": "1",
          "DMLC_NUM_GLOBAL_WORKER": "2"}


def local(port, workers):
    return {"DMLC_PS_ROOT_URI": "127.0.0.1", "DMLC_PS_ROOT_PORT": str(port), "DMLC_NUM_SERVER": "1",
            "DMLC_NUM_WORKER": str(workers)}


# Transcribed from the script, process by process.
EXPECTED = {
    "global-scheduler": ({"DMLC_ROLE_GLOBAL": "global_scheduler", **GLOBAL, **COMMON}, 'python -c "import mxnet"'),
    "global-server0": ({"DMLC_ROLE_GLOBAL": "global_server", **GLOBAL, "DMLC_ROLE": "server", **local(9093, 1),
                        "DMLC_ENABLE_CENTRAL_WORKER": "0", "DMLC_NUM_ALL_WORKER": "4", **COMMON},
                       'python -c "import mxnet"'),
    "master-worker": ({"DMLC_ROLE": "worker", "DMLC_ROLE_MASTER_WORKER": "1", **local(9093, 1),
                       "DMLC_NUM_ALL_WORKER": "4", **COMMON}, "python cnn.py --cpu"),
    "central-scheduler": ({"DMLC_ROLE": "scheduler", **local(9093, 1), **COMMON}, 'python -c "import mxnet"'),
    "A-scheduler": ({"DMLC_ROLE": "scheduler", **local(9094, 2), **COMMON}, 'python -c "import mxnet"'),
    "A-server0": ({**GLOBAL, "DMLC_ROLE": "server", **local(9094, 2), **COMMON}, 'python -c "import mxnet"'),
    "A-worker0": ({"DMLC_ROLE": "worker", **local(9094, 2), "DMLC_NUM_ALL_WORKER": "4", **COMMON},
                  "python cnn.py --cpu --data-slice-idx 0"),
    "A-worker1": ({"DMLC_ROLE": "worker", **local(9094, 2), "DMLC_NUM_ALL_WORKER": "4", **COMMON},
                  "python cnn.py --cpu --data-slice-idx 1"),
    "B-scheduler": ({"DMLC_ROLE": "scheduler", **local(9095, 2), **COMMON}, 'python -c "import mxnet"'),
    "B-server0": ({**GLOBAL, "DMLC_ROLE": "server", **local(9095, 2), **COMMON}, 'python -c "import mxnet"'),
    "B-worker0": ({"DMLC_ROLE": "worker", **local(9095, 2), "DMLC_NUM_ALL_WORKER": "4", **COMMON},
                  "python cnn.py --cpu --data-slice-idx 2"),
    "B-worker1": ({"DMLC_ROLE": "worker", **local(9095, 2), "DMLC_NUM_ALL_WORKER": "4", **COMMON},
                  "python cnn.py --cpu --data-slice-idx 3"),
}


def test_the_guides_twelve_processes_value_for_value():
    processes = {p["name"]: p for p in geomx_processes(PSEUDO)}
    assert sorted(processes) == sorted(EXPECTED)
    for name, (env, program) in EXPECTED.items():
        assert processes[name]["env"] == env, name
        assert processes[name]["program"] == program, name


def test_central_workers_join_training():
    topology = {**PSEUDO, "central": {**PSEUDO["central"], "workers": 2}}
    processes = {p["name"]: p for p in geomx_processes(topology)}
    assert processes["global-server0"]["env"]["DMLC_ENABLE_CENTRAL_WORKER"] == "1"
    assert processes["global-server0"]["env"]["DMLC_NUM_ALL_WORKER"] == "6"
    assert processes["central-scheduler"]["env"]["DMLC_NUM_WORKER"] == "3"  # the master worker counts here
    assert processes["central-worker1"]["program"].endswith("--data-slice-idx 1")
    assert processes["B-worker1"]["program"].endswith("--data-slice-idx 5")


# The guide's three hosts, each party on its own (addresses as the role fills them from the inventory).
MULTI = {**PSEUDO, "central": {**PSEUDO["central"], "address": "172.17.34.3", "global_address": "172.17.34.2",
                               "host": "host-a"},
         "parties": [{**PSEUDO["parties"][0], "address": "172.17.29.2", "host": "host-b"},
                     {**PSEUDO["parties"][1], "address": "172.17.33.2", "host": "host-c"}],
         "host_addresses": {"host-a": ["10.1.1.34", "172.17.34.0/24"], "host-b": ["10.1.1.29", "172.17.29.0/24"],
                            "host-c": ["10.1.1.33", "172.17.33.0/24"]}}


def test_multi_host_addresses():
    assert geomx_topology_problems(MULTI) == []
    processes = {p["name"]: p for p in geomx_processes(MULTI)}
    assert processes["A-server0"]["env"]["DMLC_PS_GLOBAL_ROOT_URI"] == "172.17.34.2"
    assert processes["A-server0"]["env"]["DMLC_PS_ROOT_URI"] == "172.17.29.2"
    assert processes["global-server0"]["env"]["DMLC_PS_ROOT_URI"] == "172.17.34.3"
    assert {p["host"] for p in processes.values() if p["party"] == "B"} == {"host-c"}


def test_processes_start_schedulers_then_servers_then_workers():
    kinds = [p["kind"] for p in geomx_processes(PSEUDO)]
    assert kinds == sorted(kinds, key=lambda k: 0 if "scheduler" in k else 1 if "server" in k else 2)
    assert kinds.index("worker") > kinds.index("server")


def test_workers_spread_over_hosts_of_a_party():
    topology = {**MULTI, "parties": [{**MULTI["parties"][0], "address": "10.1.1.29",
                                      "workers": ["host-b", "host-b2", "host-b2"]}, MULTI["parties"][1]]}
    processes = {p["name"]: p for p in geomx_processes(topology)}
    assert [processes[f"A-worker{i}"]["host"] for i in range(3)] == ["host-b", "host-b2", "host-b2"]
    assert processes["A-scheduler"]["env"]["DMLC_NUM_WORKER"] == "3"
    assert processes["global-server0"]["env"]["DMLC_NUM_ALL_WORKER"] == "5"
    assert processes["B-worker0"]["program"].endswith("--data-slice-idx 3")


def test_single_tier_across_hosts():
    processes = geomx_processes({"mode": "single", "python": "/opt/venv/bin/python", "worker_program": "w.py",
                                 "single": {"host": "n1", "address": "10.0.0.1", "servers": ["n1"],
                                            "workers": ["n2", "n3"]}})
    assert [(p["name"], p["host"]) for p in processes] == [("scheduler", "n1"), ("server0", "n1"),
                                                           ("worker0", "n2"), ("worker1", "n3")]
    assert processes[0]["program"] == '/opt/venv/bin/python -c "import mxnet"'
    assert processes[3]["program"] == "w.py --data-slice-idx 1"
    assert processes[3]["env"]["DMLC_NUM_WORKER"] == "2"


def test_single_tier_dist_sync():
    processes = geomx_processes({"mode": "single", "single": {"address": "10.0.0.1", "scheduler_port": 9000,
                                                              "servers": 1, "workers": 2}})
    assert [p["kind"] for p in processes] == ["scheduler", "server", "worker", "worker"]
    assert processes[2]["env"] == {"DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "10.0.0.1", "DMLC_PS_ROOT_PORT": "9000",
                                   "DMLC_NUM_SERVER": "1", "DMLC_NUM_WORKER": "2", **COMMON}


@pytest.mark.parametrize(("topology", "problem"), [
    ({"parties": PSEUDO["parties"]}, "there is no central party"),
    ({**PSEUDO, "parties": []}, "there are no parties besides the central one"),
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "workers": 0}]}, "party A has no worker"),
    ({**PSEUDO, "parties": [PSEUDO["parties"][0], {**PSEUDO["parties"][1], "scheduler_port": 9094}]},
     "party B's scheduler and party A's scheduler both bind port 9094 on localhost"),
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "scheduler_port": 9092}]},
     "party A's scheduler and the global scheduler both bind port 9092 on localhost"),
    # Every address differs, yet one host: ps-lite binds the port on every interface.
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "address": "10.0.0.2", "scheduler_port": 9093}]},
     "party A's scheduler and the central party's scheduler both bind port 9093 on localhost"),
    ({**MULTI, "parties": [{**MULTI["parties"][0], "address": "172.17.33.2"}, MULTI["parties"][1]]},
     "party A's scheduler runs on host-b but its address 172.17.33.2 belongs to host-c, so its servers and "
     "workers would dial host-c (party B's scheduler) instead; fix: set the address of party A to an address of "
     "host-b (10.1.1.29, 172.17.29.0/24)"),
    ({**MULTI, "parties": [{**MULTI["parties"][0], "address": "192.0.2.7"}, MULTI["parties"][1]]},
     "party A's scheduler runs on host-b but its address 192.0.2.7 is none of host-b's"),
    ({**MULTI, "central": {**MULTI["central"], "global_address": "127.0.0.1"}},
     "the global scheduler is at 127.0.0.1 but its members on host-b, host-c cannot reach host-a's loopback; "
     "fix: set central.global_address"),
    ({"mode": "single", "single": {"host": "n1", "workers": ["n2", "n3"]}},
     "the scheduler is at 127.0.0.1 but its members on n2, n3 cannot reach n1's loopback"),
    ({**PSEUDO, "parties": [PSEUDO["parties"][0], PSEUDO["parties"][0]]}, "two parties are named A"),
    ({"mode": "single", "single": {"servers": 1, "workers": 0}}, "the single-tier cluster has no worker"),
    ({**PSEUDO, "central": {**PSEUDO["central"], "global_servers": []}}, "the central party has no global server"),
])
def test_inconsistent_topologies_fail_with_the_fix(topology, problem):
    problems = geomx_topology_problems(topology)
    assert any(problem in p and "fix:" in p for p in problems), problems
    with pytest.raises(ValueError, match=problem.split(",")[0].replace("'", ".")):
        geomx_processes(topology)


def test_a_sound_topology_has_no_problem():
    assert geomx_topology_problems(PSEUDO) == []


@pytest.mark.parametrize("topology, problem", [
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "servers": 2}, PSEUDO["parties"][1]]},
     "party A has 2 local servers, but GeoMX runs exactly one per party (ps-lite refuses more at start: load balance "
     "at the first layer is not supported); fix: set its servers to 1"),
    ({**MULTI, "parties": [{**MULTI["parties"][0], "servers": ["host-b", "host-b"]}, MULTI["parties"][1]]},
     "party A has 2 local servers"),
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "worker": 2}, PSEUDO["parties"][1]]},
     "party A has an unknown key 'worker', which would be ignored; fix: write workers"),
    ({**PSEUDO, "central": {**PSEUDO["central"], "global_server": 1}},
     "the central party has an unknown key 'global_server', which would be ignored; fix: write global_servers"),
    ({**PSEUDO, "partys": []}, "the topology has an unknown key 'partys', which would be ignored; fix: write parties"),
    ({"mode": "single", "single": {"servers": 1, "workers": 1, "colour": "x"}},
     "the single-tier cluster has an unknown key 'colour', which would be ignored; fix: remove it (known keys: host,"),
])
def test_what_geomx_refuses_at_start_and_misspelled_keys_are_problems(topology, problem):
    problems = geomx_topology_problems(topology)
    assert len(problems) == 1 and problem in problems[0], problems


def test_many_servers_are_fine_in_one_tier():
    assert geomx_topology_problems({"mode": "single", "single": {"servers": 2, "workers": 2}}) == []


def test_addresses_come_from_the_inventory_unless_given():
    addresses = {"host-a": ["10.1.1.34", "172.17.34.0/24"], "host-b": ["10.1.1.29"], "host-c": ["10.1.1.33"]}
    topology = {"central": {"host": "host-a", "global_servers": 1},
                "parties": [{"name": "A", "host": "host-b", "scheduler_port": 9094, "workers": 2},
                            {"name": "B", "host": "host-c", "address": "172.17.33.2", "scheduler_port": 9095,
                             "workers": ["host-c", "host-b"]}]}
    resolved = geomx_with_addresses(topology, addresses)
    assert resolved["central"]["address"] == "10.1.1.34" and resolved["parties"][0]["address"] == "10.1.1.29"
    assert resolved["parties"][1]["address"] == "172.17.33.2"
    assert resolved["host_addresses"] == addresses
    assert geomx_hosts(resolved) == ["host-a", "host-b", "host-c"]
    # 172.17.33.2 is not known to be host-c's (no bridge subnet given): named with the fix.
    assert "party B's scheduler runs on host-c but its address 172.17.33.2 is none of host-c's" in (
        geomx_topology_problems(resolved)[0])
    env = {p["name"]: p["env"] for p in geomx_processes(geomx_with_addresses(
        topology, {**addresses, "host-c": ["10.1.1.33", "172.17.33.0/24"]}))}
    assert env["global-server0"]["DMLC_PS_GLOBAL_ROOT_URI"] == "10.1.1.34"
    assert env["B-worker1"]["DMLC_PS_ROOT_URI"] == "172.17.33.2"
