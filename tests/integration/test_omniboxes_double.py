"""The OmniBoxes test double keeps upstream's contract, so tests that deploy it prove something."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from tests.conftest import free_port

DOUBLE = Path(__file__).resolve().parents[1] / "doubles" / "omniboxes"


def request(method, url, key="default_key"):
    req = urllib.request.Request(url, method=method, headers={"x-api-key": key})
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s (last: {last})")


@pytest.fixture
def cluster(redis_port):
    procs = []

    def start(module, *args):
        env = dict(os.environ, PYTHONPATH=str(DOUBLE))
        proc = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    pool, registry = (redis.Redis(port=redis_port, db=db, decode_responses=True) for db in (0, 1))
    pool.flushdb()
    registry.flushdb()
    yield start, pool, registry
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def test_instances_node_and_master(cluster, redis_port):
    start, pool, registry = cluster
    instance_ports = [free_port() for _ in range(3)]
    instances = [start("omniboxes.node.instance_server", "--port", p, "--redis_host", "127.0.0.1",
                       "--redis_port", redis_port) for p in instance_ports]
    node_port, master_port = free_port(), free_port()
    start("omniboxes.node.server", "--port", node_port, "--workers", 2, "--redis_host", "127.0.0.1",
          "--redis_port", redis_port)
    start("omniboxes.master.server", "--port", master_port, "--workers", 2, "--redis-host", "127.0.0.1",
          "--redis-port", redis_port, "--redis-registry")
    node_url = f"http://127.0.0.1:{node_port}"

    wait_for(lambda: pool.scard("available") == 3, 10, "three instances in the pool")
    info = wait_for(lambda: request("GET", f"{node_url}/info"), 10, "node /info")
    assert info == {"available": 3, "capacity": 3, "in_use": []}

    # What gymfleet's registrar does for this node; the master finds it at its next registry read.
    registry.set("omnibox:nodes:double-host", node_url, ex=120)
    master = wait_for(lambda: [n for n in request("GET", f"http://127.0.0.1:{master_port}/info")["nodes"]
                               if n["healthy"]], 25, "a healthy node on the master")
    assert master == [{"url": node_url, "hash": node_url, "healthy": True, "capacity": 3, "available": 3,
                       "instances": []}]

    lease = request("POST", f"{node_url}/get")["instance_id"]
    assert int(lease.rsplit(":", 1)[1]) in instance_ports
    assert request("GET", f"{node_url}/info")["available"] == 2
    assert request("GET", f"{node_url}/info")["in_use"] == [lease]
    request("POST", f"{node_url}/reset?instance_id={lease}")
    assert request("GET", f"{node_url}/info") == {"available": 3, "capacity": 3, "in_use": []}

    with pytest.raises(urllib.error.HTTPError) as denied:
        request("GET", f"{node_url}/info", key="wrong")
    assert denied.value.code == 403

    instances[0].send_signal(signal.SIGTERM)
    instances[0].wait(10)
    assert sorted(int(p) for p in pool.smembers("available")) == sorted(instance_ports[1:])

    # As upstream, the master drops a node whose key went only while the registry lists others
    # (an empty registry leaves its view as it was).
    gone = "http://127.0.0.1:1"
    registry.set("omnibox:nodes:gone-host", gone, ex=120)
    registry.delete("omnibox:nodes:double-host")
    def nodes_when_only_gone():
        nodes = request("GET", f"http://127.0.0.1:{master_port}/info")["nodes"]
        return nodes if [n["url"] for n in nodes] == [gone] else None

    nodes = wait_for(nodes_when_only_gone, 25, "the master dropping the unregistered node")
    assert nodes == [{"url": gone, "hash": gone, "healthy": False, "capacity": 0, "available": 0, "instances": []}]
