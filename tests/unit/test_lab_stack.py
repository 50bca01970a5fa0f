"""`gymfleet lab stack`: the whole stack laid over a lab's hosts for `make demo`."""

from pathlib import Path

import pytest
import yaml

from gymfleet.errors import GymfleetError
from gymfleet.lab.stack import render_stack, write_stack

HOSTS = [("demo-node1", "172.30.7.11"), ("demo-node2", "172.30.7.12"), ("demo-node3", "172.30.7.13")]


def groups(stack):
    return {name: list((value or {}).get("hosts", {})) for name, value in stack["all"]["children"].items()}


def test_three_nodes():
    stack = yaml.safe_load(render_stack(HOSTS, None, Path("/w/openenv/echo_env"), Path("/double"), Path("/w")))
    assert groups(stack) == {
        "redis": [], "omniboxes_master": ["demo-node1"],
        "omniboxes_worker": ["demo-node1", "demo-node2", "demo-node3"], "ray_head": ["demo-node1"],
        "ray_worker": ["demo-node2", "demo-node3"], "openenv_envoy": ["demo-node1"],
        "openenv_worker": ["demo-node2", "demo-node3"], "parameter_server": ["demo-node1", "demo-node2", "demo-node3"],
    }
    values = stack["all"]["vars"]
    assert values["firewall_allowed_cidrs"] == ["172.30.7.1/32"]
    assert values["omniboxes_local_path"] == "/double" and values["omniboxes_browser"] == "none"
    assert values["parameter_server_topology"]["single"] == {
        "host": "demo-node1", "scheduler_port": 9092, "servers": ["demo-node2"],
        "workers": ["demo-node1", "demo-node3"]}
    # node1 holds OmniBoxes' registry Redis (6379), Ray's GCS, Envoy and the ps-lite scheduler: all distinct.
    ports = [6379, values["ray_gcs_port"], 8000, values["parameter_server_topology"]["single"]["scheduler_port"],
             stack["all"]["children"]["redis"]["vars"]["redis_instances"][0]["port"], *values["openenv_ports"]]
    assert len(set(ports)) == len(ports)


def test_one_node_runs_everything_and_has_no_ray_workers():
    stack = yaml.safe_load(render_stack(HOSTS[:1], Path("/webgym"), Path("/w/p"), Path("/double"), Path("/w")))
    assert "ray_worker" not in stack["all"]["children"]
    assert groups(stack)["openenv_worker"] == ["demo-node1"]
    assert stack["all"]["vars"]["omniboxes_local_path"] == "/webgym"
    assert stack["all"]["vars"]["omniboxes_browser"] == "system"


def test_real_omniboxes_must_be_a_webgym_checkout(tmp_path):
    with pytest.raises(GymfleetError, match=r"--omniboxes .*: no omniboxes/ package in it; fix: point at a checkout"):
        write_stack(tmp_path / "lab", tmp_path / "work", tmp_path / "double", omniboxes=tmp_path)


def test_a_lab_without_inventory(tmp_path):
    with pytest.raises(GymfleetError, match=r"hosts.yml is missing; fix: `gymfleet lab up --name lab`"):
        write_stack(tmp_path / "lab", tmp_path / "work", tmp_path / "double")
