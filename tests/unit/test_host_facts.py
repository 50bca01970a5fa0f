"""host_facts against Ansible's own setup module on this machine: the facts the roles read, same names and
shapes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.gymfleet.cluster.plugins.modules import host_facts

from .modhelper import run_module

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def setup_facts() -> dict:
    # JSON on stdout and nothing else: profile_tasks off.
    env = os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
                        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                        "ANSIBLE_CALLBACKS_ENABLED": "gymfleet.cluster.warm_workers"}
    proc = subprocess.run([str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.setup",
                           "-a", "gather_subset=!all,!min,platform,distribution,network",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return {key.removeprefix("ansible_"): value for key, value in result["ansible_facts"].items()}


@pytest.fixture(scope="module")
def both():
    return run_module(host_facts.main, {})["ansible_facts"], setup_facts()


def test_the_names_and_the_release_are_setups(both):
    ours, theirs = both
    for key in ("hostname", "nodename", "distribution_release"):
        assert ours[key] == theirs[key], key


def test_the_interfaces_and_their_addresses_are_setups(both):
    ours, theirs = both
    assert sorted(ours["interfaces"]) == sorted(theirs["interfaces"])
    assert sorted(ours["all_ipv4_addresses"]) == sorted(theirs["all_ipv4_addresses"])
    for name in ours["interfaces"]:
        key = name.replace("-", "_")
        assert ours[key]["device"] == theirs[key]["device"]
        if "ipv4" in theirs[key]:
            assert ours[key]["ipv4"] == theirs[key]["ipv4"], name
            assert ours[key]["ipv4_secondaries"] == theirs[key].get("ipv4_secondaries", []), name
        else:
            assert "ipv4" not in ours[key], name


def test_interface_facts_from_ips_json():
    links = [{"ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536,
              "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "br-1a", "flags": ["BROADCAST", "UP"], "mtu": 1500, "address": "02:00:00:00:00:01",
              "addr_info": [{"family": "inet", "local": "10.1.0.1", "prefixlen": 24, "broadcast": "10.1.0.255"},
                            {"family": "inet", "local": "10.1.0.9", "prefixlen": 24},
                            {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
             {"ifname": "eth1", "flags": ["BROADCAST"], "mtu": 1500, "addr_info": []}]
    facts = host_facts.interface_facts(links)
    assert facts["interfaces"] == ["lo", "br-1a", "eth1"]
    assert facts["all_ipv4_addresses"] == ["10.1.0.1", "10.1.0.9"]
    assert facts["br_1a"]["ipv4"] == {"address": "10.1.0.1", "netmask": "255.255.255.0", "network": "10.1.0.0",
                                      "prefix": "24", "broadcast": "10.1.0.255"}
    assert facts["br_1a"]["ipv4_secondaries"] == [{"address": "10.1.0.9", "broadcast": "", "netmask": "255.255.255.0",
                                                   "network": "10.1.0.0", "prefix": "24"}]
    assert facts["eth1"]["active"] is False and "ipv4" not in facts["eth1"]


def test_the_release_code_name_from_os_release():
    assert host_facts.os_release_codename('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n') == "bookworm"
    assert host_facts.os_release_codename('UBUNTU_CODENAME=jammy\nVERSION_CODENAME=\n') == "jammy"
    assert host_facts.os_release_codename("ID=alpine\n") == ""


def test_the_gpus_nvidia_smi_lists():
    listing = ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5b3c...)\n"
               "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-9e1f...)\n")
    assert host_facts.gpu_count(listing) == 2
    assert host_facts.gpu_count("No devices were found\n") == 0 and host_facts.gpu_count("") == 0


def test_the_route_source_towards_a_name_an_address_and_nowhere():
    ip = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"

    def run(argv):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    assert host_facts.route_source("localhost", ip, run) == {
        "target": "localhost", "address": "127.0.0.1", "source": "127.0.0.1", "error": ""}
    unresolved = host_facts.route_source("no-such-host.invalid", ip, run)
    assert unresolved["error"].startswith("cannot resolve no-such-host.invalid") and unresolved["source"] == ""
    unreachable = (2, "", "RTNETLINK answers: Network is unreachable")
    nowhere = host_facts.route_source("192.0.2.1", ip, lambda argv: unreachable)
    assert nowhere["error"] == "no route to 192.0.2.1 (192.0.2.1): RTNETLINK answers: Network is unreachable"


def test_the_cluster_address_is_decided_in_order_and_checked_against_the_interfaces():
    from ansible_collections.gymfleet.cluster.plugins.action.cluster_address_facts import decide

    facts = {"all_ipv4_addresses": ["10.0.0.12", "100.64.0.7"],
             "route_source": {"target": "10.0.0.11", "address": "10.0.0.11", "source": "10.0.0.12", "error": ""}}
    by = "cluster_address_control_host"
    assert decide("n2", facts, "", "", "node1", by) == (
        {"cluster_address": "10.0.0.12", "cluster_address_source": "route to node1"}, "")
    assert decide("n2", facts, "", "100.64.0.7", "node1", by)[0]["cluster_address_source"] == "tailscale"
    assert decide("n2", facts, "10.0.0.12", "100.64.0.7", "node1", by)[0] == {
        "cluster_address": "10.0.0.12", "cluster_address_source": "cluster_address_ip"}
    decided, problem = decide("n2", facts, "192.0.2.1", "", "node1", by)
    assert decided == {} and problem == (
        "host n2: cluster address 192.0.2.1 (from cluster_address_ip) is not on any interface here; fix: set "
        "cluster_address_ip to one of 10.0.0.12, 100.64.0.7")
    lost = {**facts, "route_source": {"target": "node9", "error": "node9 does not resolve", "source": ""}}
    decided, problem = decide("n2", lost, "", "", "node9", by)
    assert decided == {} and problem == (
        "host n2: node9 does not resolve (cluster_address_control_host); fix: set cluster_address_ip to this host's "
        "address on the cluster network")
