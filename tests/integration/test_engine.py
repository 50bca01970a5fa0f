"""The services engine through the real deploy on the lab: interrupted deploys are finished by the next run, and
what leaves the inventory leaves the hosts."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import LAB, ROOT, VENV_BIN, answering, cli

NODE = f"{LAB}-node1"


def on_node(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", NODE, *argv], capture_output=True, text=True)


def redis_config(name: str) -> str:
    password = (Path.home() / ".cache" / "gymfleet" / "labs" / LAB / "redis_password").read_text().strip()
    answer = on_node("redis-cli", "-p", "6379", "--no-auth-warning", "-a", password, "config", "get", name)
    return answer.stdout.split()[-1]


@pytest.mark.parametrize("databases, task", [
    (5, "Create the environment and install its pinned requirements"),
    (6, "Lay out and run the instances"),
])
def test_a_deploy_interrupted_after_a_change_is_finished_by_the_next(deployed, databases, task):  # noqa: F811
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    change = ["-e", f"redis_databases={databases}", "-i", str(deployed), "--plain"]
    proc = subprocess.Popen([str(VENV_BIN / "gymfleet"), "deploy", *change], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.monotonic() + 300, ""
    while time.monotonic() < deadline and task not in seen:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
    assert task in seen, seen[-2000:]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 99, (out[-2000:], err[-2000:])

    rerun = cli("deploy", *change)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert redis_config("databases") == str(databases), "the instance runs the configuration on disk"
    again = cli("deploy", *change)
    assert again.returncode == 0 and ", 0 changes;" in again.stdout, again.stdout[-3000:]


def test_an_instance_that_leaves_the_inventory_leaves_the_host(deployed):  # noqa: F811
    two = ["-e", '{"redis_instances": [{"port": 6379}, {"port": 6391}]}', "-i", str(deployed), "--plain"]
    assert cli("deploy", *two).returncode == 0
    assert "6391" in on_node("iptables", "-S", "GYMFLEET-INPUT").stdout
    assert on_node("systemctl", "is-active", "redis-server@6391.service").stdout.strip() == "active"

    back = cli("deploy", "-i", str(deployed), "--plain")
    assert back.returncode == 0, back.stdout[-3000:]
    assert "6391" not in on_node("iptables", "-S", "GYMFLEET-INPUT").stdout, "the firewall no longer claims it"
    assert ":6391 " not in on_node("ss", "-ltnH").stdout, "nothing listens on the old port"
    assert on_node("test", "-e", "/etc/systemd/system/redis-server@6391.service").returncode == 1
    assert on_node("test", "-d", "/var/lib/redis/6391").returncode == 0, "its data stays"


def test_no_port_answers_a_non_member_not_even_under_a_tag(deployed):  # noqa: F811
    # A Redis instance added with -t redis alone, and a port a program opened on its own (as Ray's exporters do).
    more = ["-e", '{"redis_instances": [{"port": 6379}, {"port": 6392}]}', "-i", str(deployed), "--plain"]
    tagged = cli("deploy", *more, "-t", "redis")
    assert tagged.returncode == 0, tagged.stdout[-3000:]
    stray = on_node("systemd-run", "--unit", "stray-listener", "--", "python3", "-m", "http.server", "--bind",
                    "0.0.0.0", "18998")
    assert stray.returncode == 0, stray.stderr
    try:
        for _ in range(50):
            listening = on_node("ss", "-ltnH").stdout
            if ":18998 " in listening:
                break
            time.sleep(0.2)
        ports = sorted({int(line.split()[3].rsplit(":", 1)[1]) for line in listening.splitlines()
                        if not line.split()[3].startswith(("127.", "[::1]"))})
        assert {6379, 6392, 18998} <= set(ports), listening
        address = on_node("sh", "-c", "hostname -I").stdout.split()[0]
        assert answering(address, ports) <= {22}, "only SSH answers a non-member"
        assert {6379, 6392, 18998} <= answering(address, ports, f"{LAB}-node2"), "members reach every port"
    finally:
        on_node("systemctl", "stop", "stray-listener")
        back = cli("deploy", "-i", str(deployed), "--plain")
    assert back.returncode == 0, back.stdout[-3000:]
