"""Which sockets gymfleet's services listen on (module_utils/listeners.py), the probe that reads them and the
status row that judges them against the port plan."""

import os
import socket

from ansible_collections.gymfleet.cluster.plugins.module_utils import status_rows
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_probes import run_probe
from ansible_collections.gymfleet.cluster.plugins.module_utils.listeners import (
    parse_net_table,
    service_listeners,
    undeclared,
    unit_of,
)

# The header and three rows of a real /proc/net/tcp: 0.0.0.0:44217 LISTEN, 127.0.0.1:6379 LISTEN and an
# established connection from 172.30.1.2:41234.
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:ACB9 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0
   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 2222 1 0 100 0 0 10 0
   3: 00000000:2049 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6666 1 0 100 0 0 10 0
   2: 02011EAC:A0D2 0A011EAC:18EB 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1
"""
# [::]:8265 LISTEN, and a UDP6 socket bound to ::1 (rows of real tables, header shortened).
ANY6, LOOPBACK6 = "0" * 32, "0" * 24 + "01000000"
COUNTERS = "00000000:00000000 00:00000000 00000000     0        0"
TCP6 = f"""  sl  local_address  remote_address  st ... inode
   0: {ANY6}:2049 {ANY6}:0000 0A {COUNTERS} 4444 1 0 100 0 0 10 0
"""
UDP6 = f"""  sl  local_address  remote_address  st ... inode ref pointer drops
  1: {LOOPBACK6}:0035 {ANY6}:0000 07 {COUNTERS} 5555 2 0 0
"""


def test_net_tables_give_listening_and_bound_sockets_only():
    assert parse_net_table(TCP, "tcp") == [
        {"proto": "tcp", "address": "0.0.0.0", "port": 44217, "inode": "1111"},
        {"proto": "tcp", "address": "127.0.0.1", "port": 6379, "inode": "2222"},
        {"proto": "tcp", "address": "0.0.0.0", "port": 8265, "inode": "6666"}]
    assert parse_net_table(TCP6, "tcp") == [{"proto": "tcp", "address": "::", "port": 8265, "inode": "4444"}]
    assert parse_net_table(UDP6, "udp") == [{"proto": "udp", "address": "::1", "port": 53, "inode": "5555"}]


def test_the_innermost_service_of_a_cgroup_path_is_the_unit():
    nested = "0::/system.slice/docker-ab12.scope/system.slice/gymfleet-ray-head.service\n"
    assert unit_of(nested) == "gymfleet-ray-head.service"
    assert unit_of("0::/user.slice/user-0.slice/session-3.scope\n") == ""


def _fake_proc(root, pid, unit, inodes):
    proc = root / "proc"
    (proc / "net").mkdir(parents=True, exist_ok=True)
    for name, text in (("tcp", TCP), ("tcp6", TCP6), ("udp", ""), ("udp6", UDP6)):
        (proc / "net" / name).write_text(text)
    (proc / str(pid) / "fd").mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text(f"0::/system.slice/{unit}\n")
    (proc / str(pid) / "comm").write_text("raylet\n")
    for number, inode in enumerate(inodes):
        os.symlink(f"socket:[{inode}]", proc / str(pid) / "fd" / str(number))
    return proc


def test_a_gymfleet_units_non_loopback_sockets_are_its_listeners(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / "gymfleet-ray-head.service").write_text("[Unit]\nX-Gymfleet-Component=ray\nX-Gymfleet-Ports=8265\n")
    (units / "other.service").write_text("[Unit]\nDescription=not ours\n")
    (units / "ps-server.service").write_text("[Unit]\nX-Gymfleet-Component=ps\nX-Gymfleet-Listens=any\n")
    proc = _fake_proc(tmp_path, 41, "gymfleet-ray-head.service", ["1111", "2222", "6666"])
    _fake_proc(tmp_path, 42, "other.service", ["5555"])
    _fake_proc(tmp_path, 43, "ps-server.service", ["4444"])
    assert service_listeners(str(units), str(proc)) == [
        {"unit": "gymfleet-ray-head.service", "component": "ray", "pid": 41, "process": "raylet", "proto": "tcp",
         "address": "0.0.0.0", "port": 8265, "any_port": False, "declared": True},
        {"unit": "gymfleet-ray-head.service", "component": "ray", "pid": 41, "process": "raylet", "proto": "tcp",
         "address": "0.0.0.0", "port": 44217, "any_port": False, "declared": False},
        {"unit": "ps-server.service", "component": "ps", "pid": 43, "process": "raylet", "proto": "tcp",
         "address": "::", "port": 8265, "any_port": True, "declared": False}]


def test_the_plan_covers_ports_and_ranges_of_the_same_protocol():
    listeners = [{"proto": "tcp", "port": 8265}, {"proto": "tcp", "port": 10500}, {"proto": "udp", "port": 6379},
                 {"proto": "tcp", "port": 44217}]
    plan = [{"ports": 8265}, {"ports": [10002, 10999], "proto": "tcp"}, {"ports": 6379}]
    assert undeclared(listeners, plan) == listeners[2:]
    assert undeclared([{"proto": "tcp", "port": 39211, "any_port": True}], plan) == []
    assert undeclared([{"proto": "tcp", "port": 8000, "declared": True}], plan) == []


ROW = {"judge": "listeners", "system": "firewall", "component": "ports"}
STRAY = {"unit": "gymfleet-ray-head.service", "component": "ray", "pid": 41, "process": "python3", "proto": "tcp",
         "address": "0.0.0.0", "port": 44217}


def test_a_listener_outside_the_plan_is_a_problem_naming_unit_process_and_address():
    row = status_rows.listeners("h", ROW, {"sockets": {"listeners": [STRAY], "plan": [{"ports": 6379}]}}, None)
    assert row["state"] == "DOWN"
    assert row["detail"] == ("listening on ports no declaration names: gymfleet-ray-head.service (python3, pid 41) "
                             "on 0.0.0.0:44217/tcp; fix: declare the port in the component's settings or bind it "
                             "to loopback")
    assert row["metrics"]["undeclared"] == [STRAY]
    declared = status_rows.listeners("h", ROW, {"sockets": {"listeners": [STRAY], "plan": [{"ports": 44217}]}}, None)
    assert (declared["state"], declared["detail"]) == ("up", "1 listening sockets, all in the port plan")
    unread = run_probe(None, "sockets", {"listeners": {"plan": "/nonexistent/plan.json"}}, 5)
    missing = status_rows.listeners("h", ROW, {"sockets": unread}, None)
    assert missing["state"] == "DOWN"
    assert missing["detail"] == ("/nonexistent/plan.json: No such file or directory; fix: gymfleet deploy --tags "
                                 "firewall")


def test_the_probe_reads_this_hosts_proc_and_the_plan(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('[{"ports": 6379}]')
    with socket.socket() as listening:
        listening.bind(("0.0.0.0", 0))
        listening.listen()
        answer = run_probe(None, "sockets", {"listeners": {"plan": str(plan), "unit_dir": str(tmp_path)}}, 5)
    # No gymfleet unit in that directory, so no socket is any service's, however many this host has.
    assert answer == {"listeners": [], "plan": [{"ports": 6379}]}


def test_descriptors_the_host_hides_are_an_error_not_an_empty_answer(tmp_path, monkeypatch):
    units = tmp_path / "units"
    units.mkdir()
    (units / "redis-server@6390.service").write_text("[Unit]\nX-Gymfleet-Component=redis\n")
    proc = _fake_proc(tmp_path, 188, "redis-server@6390.service", ["1111"])

    def refused(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "readlink", refused)
    plan = tmp_path / "plan.json"
    plan.write_text("[]")
    monkeypatch.setattr("ansible_collections.gymfleet.cluster.plugins.module_utils.host_probes.service_listeners",
                        lambda unit_dir: service_listeners(str(units), str(proc)))
    answer = run_probe(None, "sockets", {"listeners": {"plan": str(plan)}}, 5)
    assert answer["error"].startswith("cannot read the sockets of redis-server@6390.service (")
    row = status_rows.listeners("h", ROW, {"sockets": answer}, None)
    assert row["state"] == "DOWN" and row["detail"].endswith("grants it CAP_SYS_PTRACE")
