"""ReaL's cluster spec filters: the document and the problems that would break ReaL at run time."""

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.real import real_cluster_spec, real_cluster_spec_problems

SLURM = {"cluster_type": "slurm", "cluster_name": "lab", "fileroot": "/nfs/real",
         "node_type_from_node_name": {"com-0[1-2]$": "g8", "com-0[3-4]$": "g1"},
         "gpu_type_from_node_name": {"com-0[1-4]$": "tesla"}, "default_mount": "/nfs:/nfs",
         "cpu_image": "real-cpu:1", "gpu_image": "real-gpu:1", "node_name_prefix": "com-"}
NODES = ["com-01", "com-02", "com-03", "com-04"]


def test_spec_keeps_the_required_keys_and_the_set_optional_ones():
    assert real_cluster_spec(SLURM) == SLURM
    ray = {"cluster_type": "ray", "cluster_name": "lab", "fileroot": "/nfs/real", "cpu_image": "",
           "node_type_from_node_name": {}, "gpu_image": None}
    assert real_cluster_spec(ray) == {"cluster_type": "ray", "cluster_name": "lab", "fileroot": "/nfs/real"}


def test_a_good_slurm_spec_has_no_problem():
    assert real_cluster_spec_problems(SLURM, NODES, {h: "/nfs/real" for h in NODES}) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cluster_type": "k8s"}, "real_cluster_type is 'k8s'; fix: use ray or slurm"),
        ({"cluster_name": ""}, "real_cluster_name is empty"),
        ({"fileroot": "nfs/real"}, "real_fileroot 'nfs/real' is not an absolute path"),
        ({"gpu_type_from_node_name": {"com-0[1-4": "tesla"}},
         "real_gpu_type_from_node_name pattern 'com-0[1-4' does not compile"),
        ({"node_type_from_node_name": {"com-0[1-4]$": "h100"}},
         "real_node_type_from_node_name maps 'com-0[1-4]$' to 'h100', which ReaL does not know"),
        ({"node_type_from_node_name": {"com-0[1-2]$": "g8"}},
         "host com-03: matches no pattern of real_node_type_from_node_name"),
        ({"node_type_from_node_name": {"com-0[1-2]$": "g8", "com-0": "g1"}},
         "host com-01: matches patterns 'com-0[1-2]$', 'com-0' of real_node_type_from_node_name"),
        ({"node_type_from_node_name": {}}, "real_node_type_from_node_name is empty, which SLURM mode needs"),
    ],
    ids=["type", "name", "relative-fileroot", "bad-regex", "unknown-node-type", "unmatched-host", "two-matches",
         "no-node-types"],
)
def test_problems(change, expected):
    problems = real_cluster_spec_problems({**SLURM, **change}, NODES)
    assert any(p.startswith(expected) for p in problems), problems


def test_ray_mode_needs_no_node_types():
    ray = {"cluster_type": "ray", "cluster_name": "lab", "fileroot": "/nfs/real"}
    assert real_cluster_spec_problems(ray, ["anything"]) == []


def test_fileroot_must_be_one_path_on_every_host():
    problems = real_cluster_spec_problems(SLURM, NODES, {"com-01": "/nfs/real", "com-02": "/home/me/real",
                                                         "com-03": "/nfs/real"})
    assert problems == ["real_fileroot differs between hosts (/home/me/real on com-02; /nfs/real on com-01, com-03); "
                        "fix: set one path for the whole cluster"]
