"""omniboxes_registry and omniboxes_pool against a real redis-server on loopback; omniboxes_info against
a test double of the OmniBoxes /info endpoints (same paths, header and JSON shapes as upstream)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespClient
from ansible_collections.gymfleet.cluster.plugins.modules import omniboxes_info, omniboxes_pool, omniboxes_registry

from ..conftest import free_port
from .modhelper import run_module


@pytest.fixture
def redis(redis_port):
    clients = {db: RespClient(port=redis_port, db=db) for db in (0, 1)}
    for client in clients.values():
        client.command("FLUSHDB")
    yield clients
    for client in clients.values():
        client.close()


def registry(redis_port, check_mode=False, **args):
    return run_module(omniboxes_registry.main,
                      {"port": redis_port, "_ansible_check_mode": check_mode, "_ansible_diff": True, **args})


def pool(redis_port, check_mode=False, **args):
    return run_module(omniboxes_pool.main,
                      {"port": redis_port, "_ansible_check_mode": check_mode, "_ansible_diff": True, **args})


def test_registry_lists_nodes_with_ttl_and_leaves_other_keys(redis, redis_port):
    redis[1].command("SETEX", "omnibox:nodes:worker-2", 120, "http://10.9.0.12:8080")
    redis[1].command("SETEX", "omnibox:nodes:worker-1", 120, "http://10.9.0.11:8080")
    redis[1].command("SET", "someone:else", "keep me")
    result = registry(redis_port)
    assert result["changed"] is False
    assert [(n["hostname"], n["url"]) for n in result["nodes"]] == [
        ("worker-1", "http://10.9.0.11:8080"), ("worker-2", "http://10.9.0.12:8080")]
    assert all(100 < n["ttl"] <= 120 for n in result["nodes"])


def test_unregister_one_node(redis, redis_port):
    redis[1].command("SETEX", "omnibox:nodes:worker-1", 120, "http://10.9.0.11:8080")
    redis[1].command("SETEX", "omnibox:nodes:worker-2", 120, "http://10.9.0.12:8080")
    checked = registry(redis_port, check_mode=True, state="absent", hostname="worker-1")
    assert checked["changed"] is True and checked["removed"] == ["worker-1"]
    assert redis[1].command("EXISTS", "omnibox:nodes:worker-1") == 1  # check mode removed nothing
    done = registry(redis_port, state="absent", hostname="worker-1")
    assert done["changed"] is True and [n["hostname"] for n in done["nodes"]] == ["worker-2"]
    assert done["diff"] == {"before": "worker-1\nworker-2\n", "after": "worker-2\n"}
    assert registry(redis_port, state="absent", hostname="worker-1")["changed"] is False


def test_flush_removes_registry_keys_only(redis, redis_port):
    for index in range(3):
        redis[1].command("SETEX", f"omnibox:nodes:w{index}", 120, f"http://10.9.0.{index}:8080")
    redis[1].command("SET", "someone:else", "keep me")
    assert sorted(registry(redis_port, check_mode=True, state="flushed")["removed"]) == ["w0", "w1", "w2"]
    assert registry(redis_port, state="flushed")["nodes"] == []
    assert redis[1].command("GET", "someone:else") == "keep me"
    assert registry(redis_port, state="flushed")["changed"] is False


def test_registry_requires_hostname_to_unregister(redis_port):
    result = registry(redis_port, state="absent")
    assert result["failed"] is True and "hostname" in result["msg"]


def test_unreachable_redis_names_the_address():
    port = free_port()
    result = registry(port)
    assert result["failed"] is True and f"127.0.0.1:{port} db 1" in result["msg"]


def test_pool_reports_missing_unexpected_and_conflicts(redis, redis_port):
    redis[0].command("SADD", "available", 9000, 9001, 9005)
    redis[0].command("SADD", "in_use", "uuid-a:9002", "uuid-b:9001")
    result = pool(redis_port, expected_ports=[9000, 9001, 9002, 9003])
    assert result["changed"] is False
    assert result["available"] == [9000, 9001, 9005]
    assert result["in_use"] == ["uuid-a:9002", "uuid-b:9001"]
    assert result["capacity"] == 5
    assert result["conflicts"] == [9001]
    assert result["missing"] == [9003]
    assert result["unexpected"] == [9005]


def test_pool_reset_fills_expected_ports_and_keeps_other_keys(redis, redis_port):
    redis[0].command("SADD", "available", 9000, 9007)
    redis[0].command("SADD", "in_use", "uuid-a:9001")
    redis[0].command("SET", "unrelated", "keep me")
    checked = pool(redis_port, check_mode=True, state="reset", expected_ports=[9000, 9001, 9002])
    assert checked["changed"] is True and checked["available"] == [9000, 9001, 9002] and checked["in_use"] == []
    assert redis[0].command("SCARD", "available") == 2  # check mode changed nothing
    done = pool(redis_port, state="reset", expected_ports=[9000, 9001, 9002])
    assert done["changed"] is True
    assert (done["available"], done["in_use"], done["missing"], done["unexpected"]) == ([9000, 9001, 9002], [], [], [])
    assert "in_use: ['uuid-a:9001']" in done["diff"]["before"]
    assert done["before"] == {"available": [9000, 9007], "in_use": ["uuid-a:9001"]}
    assert checked["before"] == done["before"]
    assert redis[0].command("GET", "unrelated") == "keep me"
    assert pool(redis_port, state="reset", expected_ports=[9000, 9001, 9002])["changed"] is False


def test_pool_reset_without_ports_empties_both_sets(redis, redis_port):
    redis[0].command("SADD", "available", 9000)
    assert pool(redis_port, state="reset")["changed"] is True
    assert redis[0].command("EXISTS", "available", "in_use") == 0


class InfoDouble(BaseHTTPRequestHandler):
    """Test double of GET /info on an OmniBoxes master or node: needs x-api-key, answers the next JSON
    document from the server's list (the last one repeats)."""

    def do_GET(self):  # noqa: N802 - the http.server API
        if self.path != "/info" or self.headers.get("x-api-key") != "default_key":
            self.send_response(403 if self.path == "/info" else 404)
            self.end_headers()
            return
        answers = self.server.answers
        body = json.dumps(answers.pop(0) if len(answers) > 1 else answers[0]).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def info_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), InfoDouble)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def node(url, healthy=True, capacity=4, available=4):
    return {"url": url, "hash": url, "healthy": healthy, "capacity": capacity, "available": available, "instances": []}


def info(server, **args):
    return run_module(omniboxes_info.main, {"url": f"http://127.0.0.1:{server.server_port}", "interval": 0.05, **args})


def test_info_master_summary(info_server):
    info_server.answers = [{"nodes": [node("http://a:8080"), node("http://b:8080", healthy=False, capacity=0)]}]
    result = info(info_server)
    assert (result["kind"], result["total"], result["healthy"], result["capacity"]) == ("master", 2, 1, 4)
    assert result["unhealthy_urls"] == ["http://b:8080"]


def test_info_node_summary(info_server):
    info_server.answers = [{"available": 3, "capacity": 4, "in_use": ["uuid:9001"]}]
    result = info(info_server)
    assert (result["kind"], result["available"], result["capacity"], result["in_use"]) == ("node", 3, 4, ["uuid:9001"])


def test_info_waits_until_enough_nodes_are_healthy(info_server):
    info_server.answers = [
        {"nodes": []},
        {"nodes": [node("http://a:8080")]},
        {"nodes": [node("http://a:8080"), node("http://b:8080")]},
    ]
    result = info(info_server, wait_healthy_nodes=2, wait_capacity=8, timeout=10)
    assert not result.get("failed")
    assert (result["healthy"], result["capacity"]) == (2, 8)
    assert len(info_server.answers) == 1  # it asked three times, not once


def test_info_times_out_with_what_is_missing(info_server):
    info_server.answers = [{"nodes": [node("http://a:8080"), node("http://b:8080", healthy=False)]}]
    result = info(info_server, wait_healthy_nodes=2, timeout=1)
    assert result["failed"] is True
    assert "1 of 2 nodes healthy (unhealthy: http://b:8080)" in result["msg"]


def test_info_wrong_key_fails_with_the_url(info_server):
    info_server.answers = [{"nodes": []}]
    result = info(info_server, api_key="wrong")
    assert result["failed"] is True and "/info" in result["msg"] and "403" in result["msg"]
