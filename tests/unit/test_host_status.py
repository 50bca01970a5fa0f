"""The status probe of one host (module host_status) against real programs on loopback, and the judges that
turn its answers into rows (module_utils/status_rows.py)."""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils import status_rows
from ansible_collections.gymfleet.cluster.plugins.modules import host_status

from ..conftest import free_port
from .modhelper import run_module


class _Handler(BaseHTTPRequestHandler):
    # How many /slow requests were in flight at once, at most: more than one proves the probes overlap.
    in_flight, peak, lock = 0, 0, threading.Lock()

    def do_GET(self):  # noqa: N802 - the http.server contract
        if self.path == "/slow":
            with _Handler.lock:
                _Handler.in_flight += 1
                _Handler.peak = max(_Handler.peak, _Handler.in_flight)
            time.sleep(2)
            with _Handler.lock:
                _Handler.in_flight -= 1
        if self.path == "/info" and self.headers.get("x-api-key") != "sesame":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"capacity": 2, "available": 1, "in_use": ["a:1"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A probe that times out hangs up on purpose; the handler's late write is no error, and its traceback would
        # land in a later test's captured stderr.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def web():
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def probe(checks, **args):
    return run_module(host_status.main, {"checks": checks, **args})


def test_every_kind_answers_with_raw_data_and_failures_are_answers(web, redis_port, tmp_path):
    (tmp_path / "exit").write_text("success exited 0\n")
    result = probe([
        {"id": "web", "secret": "sesame", "probes": {
            "info": {"http": {"url": f"{web}/info", "secret": True}},
            "no_key": {"http": {"url": f"{web}/info"}},
            "refused": {"http": {"url": f"http://127.0.0.1:{free_port()}/"}}}},
        {"id": "redis", "probes": {"info": {"redis": {"port": redis_port}},
                                   "closed": {"redis": {"port": free_port()}}}},
        {"id": "cmd", "row": {"judge": "x", "n": 3}, "probes": {
            "ok": {"command": {"argv": [sys.executable, "-c", "print('hi')"]}},
            "missing": {"command": {"argv": ["/nonexistent/tool"]}},
            "file": {"file": {"path": str(tmp_path / "exit")}},
            "no_file": {"file": {"path": str(tmp_path / "none")}}}},
    ])
    assert not result.get("failed") and result["changed"] is False
    answers = {check["id"]: check["results"] for check in result["checks"]}
    assert answers["web"]["info"] == {"status": 200, "json": {"capacity": 2, "available": 1, "in_use": ["a:1"]}}
    assert answers["web"]["no_key"]["status"] == 401
    assert answers["web"]["refused"]["status"] is None and "refused" in answers["web"]["refused"]["error"].lower()
    assert answers["redis"]["info"]["up"] is True and answers["redis"]["info"]["version"]
    assert answers["redis"]["closed"]["up"] is False
    assert answers["cmd"]["ok"] == {"rc": 0, "stdout": "hi\n", "stderr": ""}
    assert answers["cmd"]["missing"]["rc"] is None and "No such file" in answers["cmd"]["missing"]["error"]
    assert answers["cmd"]["file"] == {"text": "success exited 0\n"}
    assert "No such file" in answers["cmd"]["no_file"]["error"]
    # The row comes back as given, for the judge; the secret never does.
    assert result["checks"][2]["row"] == {"judge": "x", "n": 3}
    assert "sesame" not in json.dumps(result)


def test_probes_run_in_parallel_each_under_the_timeout(web):
    result = probe([{"id": f"slow{i}", "probes": {"p": {"http": {"url": f"{web}/slow"}}}} for i in range(6)],
                   timeout=1)
    assert _Handler.peak == 6, "the six probes did not overlap"
    assert all("timed out" in c["results"]["p"]["error"] for c in result["checks"])


@pytest.mark.parametrize("probes, message", [
    ({"p": {"tcp": {"port": 1}}}, "give exactly one of command, http"),
    ({"p": {"http": {}, "file": {}}}, "give exactly one of"),
    ({"p": {"http": "http://x"}}, "must be a mapping"),
    ({"p": {"file": {"path": "/x", "secret": True}}}, "takes no secret"),
])
def test_a_check_it_cannot_run_fails_with_the_probe_named(probes, message):
    result = probe([{"id": "c", "secret": "a-long-secret", "probes": probes}])
    assert result["failed"] and message in result["msg"] and "probe c.p:" in result["msg"]


def test_duplicate_ids_are_refused():
    result = probe([{"id": "a", "probes": {}}, {"id": "a", "probes": {}}])
    assert result["failed"] and "ids a are given more than once" in result["msg"]


# -- judging ------------------------------------------------------------------------------------------------

def _check(judge, results, **row):
    return {"id": judge, "row": {"judge": judge, "system": "s", "component": judge, **row}, "results": results}


def test_ray_workers_are_judged_against_the_heads_node_list():
    active = {"units": [{"unit": "ray-head.service", "active_state": "active", "stale": False},
                        {"unit": "ray-worker.service", "active_state": "active", "stale": True}]}
    cluster = {"alive": 1, "ray_version": "2.9.0", "totals": {"CPU": 4.0},
               "nodes": [{"address": "10.0.0.1", "alive": True}, {"address": "10.0.0.2", "alive": False}]}
    common = {"head": "h1", "nodes_expected": 2, "dashboard_url": "http://10.0.0.1:8265"}
    answered = {
        "h1": {"checks": [_check("ray_node", {"units": active, "cluster": cluster}, role="head",
                                 unit="ray-head.service", address="10.0.0.1", **common)]},
        "h2": {"checks": [_check("ray_node", {"units": active}, role="worker", unit="ray-worker.service",
                                 address="10.0.0.2", **common)]},
    }
    head, worker = status_rows.report(["h1", "h2"], answered, {})["rows"]
    assert head["state"] == "up" and head["metrics"]["nodes_alive"] == 1 and head["metrics"]["cpus"] == 4.0
    assert "1/2 nodes alive" in head["detail"]
    assert worker["state"] == "DOWN" and "does not list 10.0.0.2 alive" in worker["detail"]
    assert "ray-worker.service runs an older definition" in worker["detail"]
    # A --limit without the head: the worker is judged by its unit alone, and says so.
    alone = status_rows.report(["h2"], {"h2": answered["h2"]}, {})["rows"][0]
    assert alone["state"] == "up" and "the head h1 was not asked" in alone["detail"]


def test_an_unanswered_host_and_a_moved_address_are_rows():
    answered = {"h1": {"addresses": ["10.0.0.9"], "checks": []}}
    report = status_rows.report(["h1", "h2"], answered, {"h1": "10.0.0.1", "h2": "10.0.0.2"})
    assert report["unanswered"] == ["h2"]
    moved, gone = report["rows"]
    assert moved["host"] == "h1" and moved["state"] == "DOWN" and "10.0.0.1" in moved["detail"]
    assert gone == {"host": "h2", "component": "host", "state": "DOWN", "system": "cluster", "metrics": {},
                    "detail": gone["detail"]}


@pytest.mark.parametrize("answer, state, detail", [
    ({"rc": None, "error": "tailscale: No such file"}, "DOWN", "NotInstalled"),
    ({"rc": 1, "stdout": "", "stderr": "no daemon"}, "DOWN", "DaemonDown"),
    ({"rc": 0, "stdout": json.dumps({"BackendState": "Running", "Self": {"TailscaleIPs": ["fd7a::1", "100.64.0.1"]}})},
     "up", "Running 100.64.0.1"),
])
def test_tailscale_rows(answer, state, detail):
    row = status_rows.tailscale("h", {"component": "tailscale", "system": "tailscale"}, {"status": answer}, {})
    assert (row["state"], row["detail"]) == (state, detail)


def test_envoy_counts_the_expected_backends_only():
    backends = [{"address": "10.0.0.2:8000", "healthy": True, "reasons": []},
                {"address": "10.0.0.3:8000", "healthy": False, "reasons": ["failed_active_health_check"]}]
    row = status_rows.envoy("e", {"component": "envoy", "system": "openenv", "url": "u",
                                  "backends": ["10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"]},
                            {"clusters": {"backends": backends}}, {})
    assert row["state"] == "DOWN" and row["metrics"]["backends_healthy"] == 1
    assert "not in the cluster: 10.0.0.4:8000" in row["detail"] and "failed_active_health_check" in row["detail"]


@pytest.mark.parametrize("active, ended, state", [
    ("active", None, "up"), ("inactive", None, "not started"), ("inactive", "success exited 0", "done"),
    ("inactive", "success killed TERM", "stopped"), ("failed", "exit-code exited 1", "DOWN"),
    # A container's docker command stopped by SIGTERM: 143, which its unit counts a success.
    ("inactive", "success exited 143", "stopped"), ("failed", "exit-code exited 137", "DOWN"),
])
def test_parameter_server_process_states(active, ended, state):
    results = {"units": {"units": [{"unit": "u", "active_state": active}]},
               "exit": {"text": ended} if ended else {"error": "missing"}}
    row = status_rows.parameter_server("h", {"component": "ps s", "system": "parameter_server", "name": "s",
                                             "kind": "scheduler", "unit": "u", "scheduler": "10.0.0.1:9092"},
                                       results, {})
    assert row["state"] == state


def test_a_process_in_a_container_says_so():
    row = status_rows.parameter_server("h", {"component": "ps s", "system": "parameter_server", "name": "s",
                                             "kind": "server", "unit": "u", "scheduler": "10.0.0.1:9092",
                                             "runtime": "docker"},
                                       {"units": {"units": [{"unit": "u", "active_state": "active"}]},
                                        "exit": {"error": "missing"}}, {})
    assert row["detail"] == "server in a container, scheduler 10.0.0.1:9092"


def _process(name, kind, active, ended=None):
    return _check("parameter_server", {"units": {"units": [{"unit": f"ps-{name}", "active_state": active}]},
                                       "exit": {"text": ended} if ended else {"error": "missing"}},
                  system="parameter_server", component=f"ps {name}", name=name, kind=kind, unit=f"ps-{name}",
                  scheduler="10.0.0.1:9092")


@pytest.mark.parametrize("server, stalled", [
    (("failed", "exit-code exited 137"), True),  # lost mid-job
    (("inactive", "success exited 143"), True),  # stopped by hand while the job ran
    (("active", None), False),
    (("inactive", None), False),  # not started yet: a start in progress is no stall
])
def test_running_processes_of_a_job_that_lost_one_are_stalled(server, stalled):
    answered = {"h1": {"checks": [_process("scheduler", "scheduler", "active"), _process("worker0", "worker", "active"),
                                  _process("worker1", "worker", "inactive", "success exited 0")]},
                "h2": {"checks": [_process("server0", "server", *server)]}}
    rows = {row["component"]: row for row in status_rows.report(["h1", "h2"], answered, {})["rows"]}
    running = [rows["ps scheduler"], rows["ps worker0"]]
    assert rows["ps worker1"]["state"] == "done"  # finished its part: not stalled
    if stalled:
        assert [row["state"] for row in running] == ["DOWN", "DOWN"]
        assert all(row["metrics"]["stalled_by"] == ["server0"] for row in running)
        assert f"without ps server0 on h2 ({rows['ps server0']['state']})" in rows["ps worker0"]["detail"]
        assert "fix: restart the job" in rows["ps worker0"]["detail"]
    else:
        assert all(row["state"] == "up" and "stalled_by" not in row["metrics"] for row in running)


def test_an_unknown_judge_is_named():
    with pytest.raises(ValueError, match="no judge 'nope'"):
        status_rows.report(["h"], {"h": {"checks": [_check("nope", {})]}}, {})


@pytest.mark.parametrize("check, browser", [
    ({"text": json.dumps({"mode": "system", "version": "156.0.8078.114", "target": "/usr/bin/chromium"})},
     "browser Chromium 156.0.8078.114 (system)"),
    ({"text": json.dumps({"mode": "none", "package": "omniboxes 0.0.0[omnibox]"})}, None),
    ({"error": "/var/lib/omniboxes/check.json: No such file or directory"}, None),
])
def test_an_omniboxes_node_row_names_the_browser_its_check_launched(check, browser):
    results = {"info": {"status": 200, "json": {"available": 2, "capacity": 2, "in_use": []}},
               "units": {"units": [{"unit": u, "active_state": "active", "stale": False}
                                   for u in ("omniboxes-node.service", "omniboxes-instance@9000.service",
                                             "omniboxes-instance@9001.service")]},
               "check": check}
    row = status_rows.omniboxes_node("h", {"component": "omniboxes node :8080", "system": "omniboxes",
                                           "instances": 2, "url": "http://10.0.0.2:8080"}, results, {})
    assert row["state"] == "up" and row["detail"].startswith("capacity 2/2, available 2, instance units running 2")
    assert (browser in row["detail"]) if browser else ("browser" not in row["detail"])
    assert (row["metrics"]["browser"] or {}).get("version") == ("156.0.8078.114" if browser else None)


FIREWALL_ROW = {"component": "firewall", "system": "firewall", "chains": ["GYMFLEET-INPUT", "GYMFLEET-TAILNET"],
                "boot_unit": "gymfleet-firewall"}
WHOLE = {"exists": True, "rules": 4, "missing_jumps": [], "drift": False}


@pytest.mark.parametrize("tailnet, state, words", [
    (WHOLE, "up", ["GYMFLEET-INPUT 4 rules, GYMFLEET-TAILNET 4 rules"]),
    ({**WHOLE, "drift": None}, "up", ["GYMFLEET-TAILNET 4 rules"]),
    ({**WHOLE, "missing_jumps": ["-A INPUT -i tailscale0 -j GYMFLEET-TAILNET"]}, "DOWN",
     ["GYMFLEET-TAILNET: no jump -A INPUT -i tailscale0 -j GYMFLEET-TAILNET, so its ports are unprotected",
      "fix: systemctl restart gymfleet-firewall"]),
    ({**WHOLE, "drift": True}, "DOWN", ["GYMFLEET-TAILNET: its 4 rules differ from the ones the last deploy saved"]),
    ({"exists": False, "rules": 0, "missing_jumps": [], "drift": None}, "DOWN", ["GYMFLEET-TAILNET is missing"]),
    ({"error": "iptables is not installed"}, "DOWN", ["GYMFLEET-TAILNET cannot be read: iptables is not installed"]),
])
def test_firewall_rows(tailnet, state, words):
    row = status_rows.firewall("h", FIREWALL_ROW, {"GYMFLEET-INPUT": WHOLE, "GYMFLEET-TAILNET": tailnet}, {})
    assert row["state"] == state
    assert all(word in row["detail"] for word in words), row["detail"]
    assert (row["metrics"]["problems"] == []) == (state == "up")


def test_a_firewall_without_a_boot_unit_is_fixed_by_a_deploy():
    row = status_rows.firewall("h", {**FIREWALL_ROW, "chains": ["GYMFLEET-INPUT"], "boot_unit": ""},
                               {"GYMFLEET-INPUT": {**WHOLE, "missing_jumps": ["-A INPUT -j GYMFLEET-INPUT"]}}, {})
    assert row["detail"].endswith("; fix: gymfleet deploy --tags firewall")


SERVICES_ROW = {"judge": "services", "system": "hello", "component": "Hello servers", "unit_component": "hello"}


def _unit(name, active="active", health=None):
    entry = {"unit": name, "active_state": active, "sub_state": "running" if active == "active" else "dead",
             "restarts": 0, "enabled": True, "stale": False}
    return {**entry, "health": health} if health is not None else entry


@pytest.mark.parametrize("units, state, detail", [
    ([_unit("a.service", health={"ok": True, "detail": "HTTP 200"}), _unit("b.service")], "up",
     "2/2 units active and healthy"),
    ([_unit("a.service", active="failed"), _unit("b.service", health={"ok": False, "detail": "refused"})], "DOWN",
     "a.service is failed (dead); b.service is unhealthy: refused; fix: journalctl -u a.service, then gymfleet start"),
    ([], "DOWN", "no unit of hello is installed; fix: gymfleet deploy"),
])
def test_a_component_without_a_judge_is_judged_by_its_units_and_their_declared_health(units, state, detail):
    row = status_rows.services("h", SERVICES_ROW, {"units": {"units": units}}, None)
    assert (row["state"], row["detail"], row["system"], row["component"]) == (state, detail, "hello", "Hello servers")
