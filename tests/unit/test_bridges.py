"""Bridge subnets, routes and SNAT rules computed from the inventory (the guide's hosts A, B and C)."""

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.bridges import (
    bridge_routes,
    docker_bridge_problems,
    docker_bridge_subnet,
    forward_rules,
    route_batch,
    snat_rules,
    snat_source_problems,
)

ADDRESSES = {"a": "10.1.1.34", "b": "10.1.1.29", "c": "10.1.1.33"}
BIPS = {"a": "172.17.34.1/24", "b": "172.17.29.1/24", "c": "172.17.33.1/24"}
SUBNETS = {host: docker_bridge_subnet(bip) for host, bip in BIPS.items()}


def test_the_guides_routes():
    assert SUBNETS == {"a": "172.17.34.0/24", "b": "172.17.29.0/24", "c": "172.17.33.0/24"}
    assert bridge_routes(SUBNETS, ADDRESSES, "a") == [{"dest": "172.17.29.0/24", "via": "10.1.1.29"},
                                                       {"dest": "172.17.33.0/24", "via": "10.1.1.33"}]
    assert bridge_routes(SUBNETS, ADDRESSES, "b") == [{"dest": "172.17.34.0/24", "via": "10.1.1.34"},
                                                       {"dest": "172.17.33.0/24", "via": "10.1.1.33"}]
    assert route_batch(bridge_routes(SUBNETS, ADDRESSES, "a"), 148) == (
        "route replace 172.17.29.0/24 via 10.1.1.29 proto 148\nroute replace 172.17.33.0/24 via 10.1.1.33 proto 148\n")


def test_the_guides_masquerade_without_the_flush():
    assert snat_rules(["172.17.34.0/24"], "172.17.0.0/16") == [
        "-s 172.17.34.0/24 -d 172.17.0.0/16 -j ACCEPT",  # ends nat traversal before Docker's own MASQUERADE
        "-s 172.17.34.0/24 ! -d 172.17.0.0/16 -j MASQUERADE",  # the guide's rule
    ]
    assert forward_rules(["172.17.34.0/24"], "172.17.0.0/16") == [
        "-s 172.17.0.0/16 -d 172.17.34.0/24 -j ACCEPT", "-s 172.17.34.0/24 -j ACCEPT"]


def test_sound_bridges_have_no_problem():
    assert docker_bridge_problems(BIPS, "172.17.0.0/16", ADDRESSES) == []


@pytest.mark.parametrize(("bips", "supernet", "problem"), [
    ({**BIPS, "c": "172.17.34.9/24"}, "172.17.0.0/16",
     "hosts a and c: bridge subnets 172.17.34.0/24 and 172.17.34.0/24 overlap"),
    ({**BIPS, "c": "172.17.32.1/20"}, "172.17.0.0/16", "hosts a and c: bridge subnets 172.17.34.0/24 and "
                                                        "172.17.32.0/20 overlap"),
    ({**BIPS, "b": "172.17.29.0/24"}, "172.17.0.0/16",
     "host b: docker_bridge_bip 172.17.29.0/24 must be a host address with its prefix (Docker gives it to docker0); "
     "fix: use 172.17.29.1/24"),
    ({**BIPS, "b": "172.17.29.1"}, "172.17.0.0/16", "host b: docker_bridge_bip 172.17.29.1 has no prefix"),
    ({**BIPS, "b": "172.17.300.1/24"}, "172.17.0.0/16", "host b: docker_bridge_bip 172.17.300.1/24 is not an address"),
    ({**BIPS, "b": "172.18.29.1/24"}, "172.17.0.0/16", "host b: docker_bridge_bip 172.18.29.1/24 is outside "
                                                        "docker_bridge_supernet 172.17.0.0/16"),
    (BIPS, "10.0.0.0/8", "host a: its cluster address 10.1.1.34 lies in docker_bridge_supernet 10.0.0.0/8"),
    (BIPS, "172.17.0.0/33", "docker_bridge_supernet 172.17.0.0/33 is not a network"),
])
def test_bridge_problems_name_host_variable_and_fix(bips, supernet, problem):
    problems = docker_bridge_problems(bips, supernet, ADDRESSES)
    assert any(p.startswith(problem) for p in problems), problems
    assert all("fix:" in p for p in problems)


def test_snat_sources_are_checked():
    assert snat_source_problems(["172.17.34.0/24"], "172.17.0.0/16") == []
    assert "outside snat_supernet" in snat_source_problems(["172.18.0.0/24"], "172.17.0.0/16")[0]
    assert "is not a network" in snat_source_problems(["nope"], "172.17.0.0/16")[0]
