"""ray_cluster_info against a test double of Ray's dashboard: the same paths, bearer-token check and JSON
shapes as Ray 2.60's /api/version, /api/v0/nodes (state API) and /api/cluster_status?format=0."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.gymfleet.cluster.plugins.modules import ray_cluster_info

from ..conftest import free_port
from .modhelper import run_module

TOKEN = "0123456789abcdef" * 4


def node(node_id, ip, state="ALIVE", head=False, cpu=2.0, gpu=None):
    resources = {"CPU": cpu, "memory": 4e9, "object_store_memory": 1e9, f"node:{ip}": 1.0}
    if gpu is not None:
        resources["GPU"] = gpu
    if head:
        resources["node:__internal_head__"] = 1.0
    return {"node_id": node_id, "node_ip": ip, "is_head_node": head, "state": state, "node_name": ip,
            "resources_total": resources, "labels": {"ray.io/node-id": node_id}}


class FakeDashboard:
    """Serves the three endpoints; nodes_script holds one node list per /api/v0/nodes call (the last repeats)."""

    def __init__(self, nodes_script, token=TOKEN, usage=None):
        self.nodes_script, self.token, self.usage, self.calls = list(nodes_script), token, usage or {}, 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b"Unauthorized: Missing authentication token")
                    return
                if self.path == "/api/version":
                    body = {"version": "4", "ray_version": "2.60.0", "session_name": "session_x"}
                elif self.path.startswith("/api/v0/nodes"):
                    rows = fake.nodes_script[min(fake.calls, len(fake.nodes_script) - 1)]
                    fake.calls += 1
                    body = {"result": True, "msg": "", "data": {"result": {"total": len(rows), "result": rows}}}
                elif self.path.startswith("/api/cluster_status"):
                    body = {"result": True, "data": {"clusterStatus": {"loadMetricsReport": {"usage": fake.usage}}}}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dashboard(request):
    fake = FakeDashboard(*request.param)
    yield fake
    fake.close()


def info(fake, **args):
    return run_module(ray_cluster_info.main, {"dashboard_url": fake.url + "/", "auth_token": TOKEN,
                                              "_ansible_check_mode": True, "interval": 0.05, **args})


THREE = [node("h", "10.0.0.1", head=True, cpu=1.0, gpu=0.0), node("w1", "10.0.0.2", gpu=3.0),
         node("w2", "10.0.0.3", gpu=2.0), node("old", "10.0.0.9", state="DEAD", cpu=8.0)]


@pytest.mark.parametrize("dashboard", [([THREE], TOKEN, {"CPU": [2.0, 5.0], "objectStoreMemory": [1e8, 3e9],
                                                          "node:10.0.0.1": [0, 1]})], indirect=True)
def test_nodes_totals_and_use(dashboard):
    result = info(dashboard)
    assert result["changed"] is False and result["ray_version"] == "2.60.0"
    assert result["dashboard_url"] == dashboard.url
    assert (result["alive"], result["dead"], result["head_address"]) == (3, 1, "10.0.0.1")
    assert [n["address"] for n in result["nodes"]] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"]
    assert result["nodes"][0]["resources"] == {"CPU": 1.0, "GPU": 0.0, "memory": 4e9, "object_store_memory": 1e9}
    assert result["totals"]["CPU"] == 5.0 and result["totals"]["GPU"] == 5.0  # the dead node's 8 CPUs are not counted
    assert result["used"] == {"CPU": 2.0, "object_store_memory": 1e8}
    assert result["available"]["CPU"] == 3.0 and result["available"]["GPU"] == 5.0


@pytest.mark.parametrize("dashboard", [([THREE[:1], THREE[:2], THREE[:3]],)], indirect=True)
def test_waits_until_enough_nodes_are_alive(dashboard):
    result = info(dashboard, wait_for_nodes=3, timeout=10)
    assert result["alive"] == 3 and dashboard.calls == 3


@pytest.mark.parametrize("dashboard", [([THREE[:2]],)], indirect=True)
def test_wait_times_out_naming_the_alive_nodes(dashboard):
    result = info(dashboard, wait_for_nodes=3, timeout=1)
    assert result["failed"] is True
    assert "2 of 3 nodes alive (10.0.0.1, 10.0.0.2)" in result["msg"] and result["alive"] == 2


@pytest.mark.parametrize("dashboard", [([THREE],)], indirect=True)
def test_missing_or_wrong_token_fails_at_once(dashboard, tmp_path):
    missing = run_module(ray_cluster_info.main, {"dashboard_url": dashboard.url, "wait_for_nodes": 3, "timeout": 60})
    assert missing["failed"] is True and "HTTP 401, the token is missing" in missing["msg"] and missing["waited"] == 0
    wrong = info(dashboard, auth_token="nope", wait_for_nodes=3, timeout=60)
    assert "the token is wrong" in wrong["msg"] and "nope" not in json.dumps(wrong)
    token_file = tmp_path / "auth_token"
    token_file.write_text(TOKEN + "\n")
    right = run_module(ray_cluster_info.main, {"dashboard_url": dashboard.url, "auth_token_path": str(token_file)})
    assert right["alive"] == 3


def test_unreadable_token_file_and_unreachable_dashboard(tmp_path):
    missing = run_module(ray_cluster_info.main, {"auth_token_path": str(tmp_path / "none")})
    assert missing["failed"] is True and "auth_token_path" in missing["msg"] and "fix:" in missing["msg"]
    down = run_module(ray_cluster_info.main, {"dashboard_url": f"http://127.0.0.1:{free_port()}", "auth_token": "x",
                                              "wait_for_nodes": 1, "timeout": 1, "interval": 0.2})
    assert down["failed"] is True and "after" in down["msg"] and down["waited"] >= 1
