"""A two-node lab shared by the integration tests, created once per session and removed after, and deployed once
(`deployed`) for every test that needs the stack on it. A test that changes the deployed lab puts back what it
changed before it returns (in a finally), so the tests after it read the lab as deployed."""

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LAB = "itest"


def gymfleet(*args, env=None, check=False):
    proc = subprocess.run([str(VENV_BIN / "gymfleet"), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env or os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"gymfleet {' '.join(args)} failed: {proc.stderr}")
    return proc


def ansible_env(**extra):
    env = os.environ.copy()
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=f"{VENV_BIN}:{env['PATH']}")
    env.update(extra)
    return env


def playbook(playbook_path, inventory, *args, env=None, cwd=ROOT):
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *args],
                          capture_output=True, text=True, cwd=cwd, env=env or ansible_env())


def cli(*args, timeout=900):
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run([str(VENV_BIN / "gymfleet"), *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=timeout)


def recap(stdout):
    """PLAY RECAP's counts per host: (ok, changed, failed)."""
    return {host: (int(ok), int(changed), int(failed)) for host, ok, changed, failed in re.findall(
        r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", stdout, re.M)}


class Lines:
    """A pipe's lines, read by a thread, so that a test waits for a line under a deadline instead of hanging on a
    readline that never returns."""

    def __init__(self, stream):
        self._queue = queue.Queue()
        self.seen: list[str] = []
        self._done = threading.Event()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self._queue.put(line)
        self._done.set()
        self._queue.put(None)

    def until(self, predicate, timeout) -> str:
        """The first line (read from now on) that predicate accepts; AssertionError at the deadline or the end."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the output ended without the line looked for: {''.join(self.seen)[-2000:]}")
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such line within {timeout} s: {''.join(self.seen)[-2000:]}")

    def text(self, timeout=60) -> str:
        """Everything the pipe gave, once it has ended."""
        assert self._done.wait(timeout), "the output did not end"
        while (line := self._queue.get()) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def own_processes(pattern: str) -> list[str]:
    """Command lines matching pattern of processes in this PID namespace: a lab host's own are not ours."""
    mine = os.readlink("/proc/self/ns/pid")
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    lines = []
    for pid in found:
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == mine and pid != str(os.getpid()):
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # ended in between
    return lines


PROBE = """
import socket, sys
for port in sys.argv[2:]:
    try:
        socket.create_connection((sys.argv[1], int(port)), 2).close()
        print(port)
    except OSError:
        pass
"""


def answering(address: str, ports, member: str = "") -> set[int]:
    """The ports of address that accept a connection, tried from member (a lab node) or, without one, from a
    container on the lab's network that is no member of anything."""
    from gymfleet.lab.hosts import network_name

    argv = (["docker", "exec", member, "python3"] if member else
            ["docker", "run", "--rm", "--network", network_name(LAB), "--entrypoint", "python3", "gymfleet-lab:bare"])
    out = subprocess.run([*argv, "-c", PROBE, address, *map(str, ports)], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    return {int(port) for port in out.split()}


def lab_containers(name):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=gymfleet.lab={name}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="session")
def lab():
    """Inventory directory of a fresh two-node lab."""
    if lab_containers(LAB):
        gymfleet("lab", "down", "--name", LAB)
    gymfleet("lab", "up", "--name", LAB, "--nodes", "2", check=True)
    yield ROOT / "inventories" / "lab" / LAB
    gymfleet("lab", "down", "--name", LAB)


@pytest.fixture(scope="session")
def deployed(lab):
    """The lab with its Redis and Python environments deployed through the API, events and all: once a session."""
    from gymfleet import Cluster

    events = []
    result = Cluster(lab).deploy(on_event=events.append)
    assert result.ok, [failure.line() for failure in result.failures]
    kinds = {event["event"] for event in events}
    assert {"playbook_on_start", "playbook_on_task_start", "runner_on_ok", "playbook_on_stats"} <= kinds
    assert set(result.hosts) == {f"{LAB}-node1", f"{LAB}-node2"}
    assert result.tasks == sum(e["event"] in ("playbook_on_task_start", "playbook_on_handler_task_start")
                               for e in events)
    return lab
