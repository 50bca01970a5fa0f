"""gymfleet's OmniBoxes helper (roles/omniboxes/files/omniboxes_helper.py): the registrar against a real
redis-server on loopback and a stand-in node server that answers /info like upstream's; wait-port."""

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespClient

from ..conftest import ROOT, free_port

KEY = "omnibox:nodes:unit-host"


@pytest.fixture(scope="module")
def helper_path(tmp_path_factory):
    """The helper installed as the role installs it: beside the collection's resp.py."""
    target = tmp_path_factory.mktemp("helper")
    shutil.copy(ROOT / "roles" / "omniboxes" / "files" / "omniboxes_helper.py", target)
    shutil.copy(ROOT / "plugins" / "module_utils" / "resp.py", target)
    return target / "omniboxes_helper.py"


class InfoHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        ok = self.path == "/info" and self.headers.get("x-api-key") == "default_key"
        body = json.dumps({"available": 1, "capacity": 1, "in_use": []} if ok else {"detail": "no"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


class Node:
    """A node server that can be taken down and brought back on the same port."""

    def __init__(self):
        self.port = free_port()
        self.server = None

    def up(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), InfoHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def registry(redis_port):
    with RespClient(port=redis_port, db=1) as client:
        client.command("FLUSHDB")
        yield client


@pytest.fixture
def node():
    node = Node()
    node.up()
    yield node
    if node.server:
        node.down()


def start_registrar(helper_path, redis_port, node, *extra):
    return subprocess.Popen(
        [sys.executable, str(helper_path), "register", "--node-url", f"http://127.0.0.1:{node.port}",
         "--advertise-url", "http://192.0.2.10:8080", "--hostname", "unit-host", "--redis-host", "127.0.0.1",
         "--redis-port", str(redis_port), "--check-seconds", "0.2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_registers_while_the_node_answers_and_unregisters_when_it_stops(helper_path, redis_port, registry, node):
    registrar = start_registrar(helper_path, redis_port, node)
    try:
        assert wait_for(lambda: registry.command("GET", KEY) == "http://192.0.2.10:8080")
        assert 110 <= registry.command("TTL", KEY) <= 120

        node.down()
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 0), "the key outlived the node"
        node.up()
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 1), "the key did not come back with the node"

        registry.command("FLUSHDB")  # what flush_restart or a restarted master Redis does
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 1), "the key was not put back"

        registrar.send_signal(signal.SIGTERM)
        assert registrar.wait(5) == 0
        assert registry.command("EXISTS", KEY) == 0
    finally:
        registrar.kill()
    assert "unregistered omnibox:nodes:unit-host" in registrar.stdout.read()


def test_refreshes_the_ttl_at_each_heartbeat(helper_path, redis_port, registry, node):
    registrar = start_registrar(helper_path, redis_port, node, "--ttl", "30", "--heartbeat-seconds", "0.5")
    try:
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 1)
        registry.command("EXPIRE", KEY, 5)
        assert wait_for(lambda: registry.command("TTL", KEY) > 5, timeout=3), "the heartbeat did not refresh"
    finally:
        registrar.terminate()
        registrar.wait(5)


def test_registers_a_starting_node_until_the_start_grace_ends(helper_path, redis_port, registry, node):
    # As upstream's launcher does, a node that has just started is registered before it answers, so that a master
    # starting beside it finds it in its first read of the registry; one that never answers goes after the grace.
    node.down()
    node.server = None
    # A grace long enough for the registrar to start and register on a loaded machine; the key must go after it.
    registrar = start_registrar(helper_path, redis_port, node, "--start-grace", "6")
    try:
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 1, timeout=5), "a starting node was not registered"
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 0, timeout=30), "the key outlived the start grace"
    finally:
        registrar.terminate()
        registrar.wait(5)


def test_a_node_that_answered_once_is_unregistered_at_once_when_it_stops(helper_path, redis_port, registry, node):
    registrar = start_registrar(helper_path, redis_port, node, "--start-grace", "60")
    try:
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 1)
        node.down()
        # Well inside the 60 s grace: the grace does not keep a node that had answered.
        assert wait_for(lambda: registry.command("EXISTS", KEY) == 0, timeout=30), \
            "the start grace kept a node that had answered"
    finally:
        registrar.terminate()
        registrar.wait(5)


def test_keeps_trying_while_the_master_redis_is_down(helper_path, node):
    registrar = start_registrar(helper_path, free_port(), node)
    os.set_blocking(registrar.stdout.fileno(), False)
    said = []

    def retried_twice():
        with contextlib.suppress(BlockingIOError):  # nothing new yet
            said.append(os.read(registrar.stdout.fileno(), 65536).decode())
        return "".join(said).count("retrying") >= 2

    try:
        assert wait_for(retried_twice, timeout=30), f"no second retry: {''.join(said)}"
        assert registrar.poll() is None, "the registrar gave up instead of retrying"
    finally:
        registrar.terminate()
        registrar.wait(5)


def load_helper(helper_path):
    spec = importlib.util.spec_from_file_location("omniboxes_helper", helper_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wait_port(helper_path, node):
    helper = load_helper(helper_path)
    assert helper.main(["wait-port", str(node.port), "--timeout", "1"]) == 0
    assert helper.main(["wait-port", str(free_port()), "--timeout", "0.3"]) == 1
    # The port's socket is this process's (the stand-in node serves from a thread of it).
    assert helper.main(["wait-port", str(node.port), "--pid", str(os.getpid()), "--timeout", "1"]) == 0


def test_wait_port_with_a_pid_is_not_fooled_by_another_program_and_gives_up_when_the_server_dies(helper_path, node,
                                                                                               capsys):
    helper = load_helper(helper_path)
    server = subprocess.Popen(["sleep", "1"])
    # Another program (this test process) holds the port: the server is not ready, and it dies within 1 s (a
    # zombie here, as nobody reaps it yet). The message says it gave up at the death, not at the timeout.
    assert helper.main(["wait-port", str(node.port), "--pid", str(server.pid), "--timeout", "120"]) == 1
    out = capsys.readouterr().out
    assert f"127.0.0.1:{node.port} is held by another process than the server (pid {server.pid}); waiting" in out
    assert f"the server (pid {server.pid}) exited before it listened on 127.0.0.1:{node.port}" in out
    server.wait()


def test_start_instances_starts_only_inactive_units_in_batches(helper_path, tmp_path, monkeypatch, capsys):
    # TEST DOUBLE of systemctl: `is-active UNIT...` prints one state per unit; `start UNIT...` records a batch.
    calls = tmp_path / "calls"
    fake = tmp_path / "systemctl"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> {calls}\n"
        "if [ \"$1\" = is-active ]; then shift; [ \"$1\" = --quiet ] && exit 0;"
        " for u in \"$@\"; do case $u in *@9001.service) echo active;; *) echo inactive;; esac; done; fi\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    helper = load_helper(helper_path)
    assert helper.main(["start-instances", "--first", "9000", "--count", "5", "--parallel", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"started": [f"omniboxes-instance@{p}.service" for p in (9000, 9002, 9003, 9004)], "failed": []}
    starts = [line.split()[1:] for line in calls.read_text().splitlines() if line.startswith("start")]
    assert starts == [["omniboxes-instance@9000.service", "omniboxes-instance@9002.service"],
                      ["omniboxes-instance@9003.service", "omniboxes-instance@9004.service"]]



class InstanceHandler(BaseHTTPRequestHandler):
    """Answers /info as upstream's instance server does: {'in_lease': ..., 'ready': ...}, per the server's port."""

    answers: dict = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = json.dumps(self.answers[self.server.server_address[1]]).encode()
        self.send_response(200 if self.headers.get("x-api-key") == "default_key" else 401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def start_pool_redis(port):
    """A pool Redis as the role runs it (nothing kept on disk), on a port of its own so the test can kill it."""
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: RespClient(port=port).command("PING") is not None if port_open(port) else False)
    return proc


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def consecutive_servers(count):
    """Instance servers on consecutive ports, as the role lays them out (--first, --count)."""
    for first in range(21000, 40000, 97):
        servers = []
        try:
            for port in range(first, first + count):
                servers.append(ThreadingHTTPServer(("127.0.0.1", port), InstanceHandler))
            return servers
        except OSError:
            for server in servers:
                server.server_close()
    raise AssertionError("no free consecutive ports")


@pytest.fixture
def fake_systemctl(tmp_path):
    """TEST DOUBLE of systemctl: `list-units ...` prints the lines of the file it returns, as systemctl prints
    `list-units --all --plain --no-legend` (UNIT LOAD ACTIVE SUB DESCRIPTION), and adds a line to `calls` beside
    it: the keeper asks once a poll, so a test can wait for polls instead of sleeping."""
    units = tmp_path / "units"
    units.write_text("")
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "systemctl"
    program.write_text(f"#!/bin/sh\necho \"$1\" >> {tmp_path / 'calls'}\n[ \"$1\" = list-units ] && cat {units}\n")
    program.chmod(0o755)
    return units


def start_keeper(helper_path, redis_port, first, fake_systemctl):
    env = dict(os.environ, PATH=f"{fake_systemctl.parent / 'bin'}:{os.environ['PATH']}")
    return subprocess.Popen([sys.executable, str(helper_path), "keep-pool", "--redis-port", str(redis_port),
                             "--first", str(first), "--count", "4", "--check-seconds", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_keep_pool_adds_free_ready_instances_back_when_the_pool_redis_restarts(helper_path, fake_systemctl):
    # Four instance servers: free and ready, free and ready, leased, still starting.
    servers = consecutive_servers(4)
    ports = [server.server_address[1] for server in servers]
    free, leased, starting = {"in_lease": False, "ready": True}, {"in_lease": True, "ready": True}, {
        "in_lease": False, "ready": False}
    InstanceHandler.answers = dict(zip(ports, [free, free, leased, starting], strict=True))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    redis_port = free_port()
    pool_redis = start_pool_redis(redis_port)
    with RespClient(port=redis_port) as client:
        client.command("SADD", "available", ports[0])  # a pool that lives: this process was restarted, not Redis
        client.command("SADD", "in_use", f"lease-id:{ports[2]}")
    keeper = start_keeper(helper_path, redis_port, ports[0], fake_systemctl)

    def available():
        with RespClient(port=redis_port) as client:
            return sorted(int(member) for member in client.command("SMEMBERS", "available"))

    calls = fake_systemctl.parent / "calls"

    def two_more_polls():
        before = len(calls.read_text().splitlines()) if calls.exists() else 0
        assert wait_for(lambda: calls.exists() and len(calls.read_text().splitlines()) >= before + 2, timeout=30)

    try:
        two_more_polls()
        assert available() == [ports[0]], "a living pool is upstream's: the keeper leaves it as it is"
        pool_redis.kill()  # kill -9: the pool, kept in memory only, is gone
        pool_redis.wait()
        pool_redis = start_pool_redis(redis_port)
        assert wait_for(lambda: available() == ports[:2], timeout=30), "free and ready servers were not added back"
        two_more_polls()
        assert available() == ports[:2], "the leased and the starting servers stay out"
    finally:
        keeper.terminate()
        pool_redis.kill()
        for server in servers:
            server.shutdown()
    assert keeper.wait(5) == 0
    assert f"is new: added back [{ports[0]}, {ports[1]}]" in keeper.stdout.read()


def test_keep_pool_takes_a_dead_servers_port_out_of_the_pool(helper_path, fake_systemctl):
    redis_port, first = free_port(), 9000
    pool_redis = start_pool_redis(redis_port)
    with RespClient(port=redis_port) as client:
        client.command("SADD", "available", first, first + 1, first + 2, first + 3)
    fake_systemctl.write_text(
        f"omniboxes-instance@{first}.service loaded active running OmniBoxes instance server\n"
        f"omniboxes-instance@{first + 1}.service loaded activating auto-restart OmniBoxes instance server\n"
        f"omniboxes-instance@{first + 2}.service loaded failed failed OmniBoxes instance server\n"
        # Starting: upstream's server adds its port before it listens, so a starting unit's port stays.
        f"omniboxes-instance@{first + 3}.service loaded activating start OmniBoxes instance server\n"
        "omniboxes-instance@7.service loaded failed failed another pool's server\n")
    keeper = start_keeper(helper_path, redis_port, first, fake_systemctl)

    def available():
        with RespClient(port=redis_port) as client:
            return sorted(int(member) for member in client.command("SMEMBERS", "available"))

    try:
        assert wait_for(lambda: available() == [first, first + 3]), available()
    finally:
        keeper.terminate()
        pool_redis.kill()
    assert keeper.wait(5) == 0
    assert f"instance servers [{first + 1}, {first + 2}] are dead" in keeper.stdout.read()
