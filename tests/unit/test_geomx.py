"""GeoMX's process environments, value for value against the guide's pseudo-distributed script
(scripts/cpu/run_vanilla_hips.sh: 12 processes on 127.0.0.1), and the inconsistent topologies."""

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.geomx import geomx_processes, geomx_topology_problems

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


def test_multi_host_addresses():
    topology = {**PSEUDO, "central": {**PSEUDO["central"], "address": "172.17.34.3", "global_address": "172.17.34.2",
                                      "host": "host-a"},
                "parties": [{**PSEUDO["parties"][0], "address": "172.17.29.2", "host": "host-b"},
                            {**PSEUDO["parties"][1], "address": "172.17.33.2", "host": "host-c"}]}
    processes = {p["name"]: p for p in geomx_processes(topology)}
    assert processes["A-server0"]["env"]["DMLC_PS_GLOBAL_ROOT_URI"] == "172.17.34.2"
    assert processes["A-server0"]["env"]["DMLC_PS_ROOT_URI"] == "172.17.29.2"
    assert processes["global-server0"]["env"]["DMLC_PS_ROOT_URI"] == "172.17.34.3"
    assert {p["host"] for p in processes.values() if p["party"] == "B"} == {"host-c"}


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
     "party B's scheduler and party A's scheduler both bind 127.0.0.1:9094, so the workers of one would join"),
    ({**PSEUDO, "parties": [{**PSEUDO["parties"][0], "scheduler_port": 9092}]},
     "party A's scheduler and the global scheduler both bind 127.0.0.1:9092"),
    ({**PSEUDO, "parties": [PSEUDO["parties"][0], PSEUDO["parties"][0]]}, "two parties are named A"),
    ({"mode": "single", "single": {"servers": 1, "workers": 0}}, "the single-tier cluster has 0 workers"),
])
def test_inconsistent_topologies_fail_with_the_fix(topology, problem):
    problems = geomx_topology_problems(topology)
    assert any(problem in p and "fix:" in p for p in problems), problems
    with pytest.raises(ValueError, match=problem.split(",")[0].replace("'", ".")):
        geomx_processes(topology)


def test_a_sound_topology_has_no_problem():
    assert geomx_topology_problems(PSEUDO) == []
