"""The services engine's declarations, hashes, order and systemd plan (the runtime against a real systemd is
exercised by the molecule scenarios; here the parts that need none)."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.redis import redis_services
from ansible_collections.gymfleet.cluster.plugins.filter.systemd import services_started
from ansible_collections.gymfleet.cluster.plugins.module_utils import systemd_services
from ansible_collections.gymfleet.cluster.plugins.module_utils.services import (
    DeclarationError,
    definition_hash,
    normalize,
    normalize_all,
    probe,
    start_levels,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import (
    ServiceFailure,
    SystemdRuntime,
    unit_sections,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import render_unit


def web(name="web@8000", **extra):
    return {"name": name, "argv": ["/usr/bin/python3", "-m", "http.server"], **extra}


def test_normalize_fills_in_every_key_and_strips_the_suffix():
    spec = normalize(web("web@8000.service", ports=["8001", 8000, 8000]))
    assert spec["name"] == "web@8000"
    assert spec["ports"] == [8000, 8001]
    assert spec["restart"] == "on-failure" and spec["type"] == "exec" and spec["enabled"] is True


@pytest.mark.parametrize("bad, words", [
    ({"name": "bad name", "argv": ["/x"]}, "is not a unit name"),
    (web(argv=["python3"]), "absolute path"),
    (web(argv=[]), "absolute path"),
    (web(colour="red"), "unknown keys ['colour']"),
    (web(type="idle"), "type 'idle'"),
    (web(health={"http": "http://x/", "tcp": "x:1"}), "exactly one of"),
    (web(health={"tcp": "nohost"}), "host:port"),
    (web(health={"http": "http://x/", "retries": 3}), "unknown health keys"),
    (web(after="other"), "after must be a list"),
    (web(restart_sec="soon"), "restart_sec 'soon' is not a number"),
    (web(restart_sec=-1), "fix: 0 or more seconds"),
    (web(restart_sec=float("inf")), "fix: 0 or more seconds"),
])
def test_normalize_refuses_with_the_service_named(bad, words):
    with pytest.raises(DeclarationError) as error:
        normalize(bad)
    assert words in str(error.value)


def test_restart_sec_takes_fractions_and_a_whole_number_keeps_its_hash_and_unit_text():
    fraction = normalize(web(restart_sec="0.2"))
    assert fraction["restart_sec"] == 0.2
    assert "RestartSec=0.2\n" in render_unit(unit_sections(fraction, "web", "d"))
    # Ansible's float option hands 3.0 for a declared 3: the unit and hash must stay those of 3.
    whole, as_float = normalize(web(restart_sec=3)), normalize(web(restart_sec=3.0))
    assert as_float["restart_sec"] == 3 and isinstance(as_float["restart_sec"], int)
    assert definition_hash(whole, {}) == definition_hash(as_float, {})
    assert "RestartSec=3\n" in render_unit(unit_sections(as_float, "web", "d"))


def test_normalize_all_refuses_twins_and_cycles():
    with pytest.raises(DeclarationError, match="declared twice"):
        normalize_all([web("a"), web("a")])
    with pytest.raises(DeclarationError, match="cycle"):
        normalize_all([web("a", after=["b"]), web("b", after=["a.service"])])


def test_start_levels_follow_after_within_the_call_only():
    specs = normalize_all([web("worker", after=["head"]), web("head", after=["redis-server@6379"]),
                           web("envoy", after=["worker", "head"]), web("solo")])
    assert [[s["name"] for s in level] for level in start_levels(specs)] == [["head", "solo"], ["worker"], ["envoy"]]


def test_the_hash_follows_what_the_process_depends_on_only():
    spec = normalize(web(files=["/etc/web.conf"], environment={"A": "1"}))
    digest = definition_hash(spec, {"/etc/web.conf": "aaa"})
    assert digest == definition_hash(spec, {"/etc/web.conf": "aaa"})
    assert digest != definition_hash(spec, {"/etc/web.conf": "bbb"}), "a changed file makes the process stale"
    assert digest != definition_hash(normalize(web(files=["/etc/web.conf"], environment={"A": "2"})),
                                     {"/etc/web.conf": "aaa"})
    probed = normalize(web(files=["/etc/web.conf"], environment={"A": "1"}, health={"tcp": "127.0.0.1:1"},
                           ports=[1], enabled=False, description="other words"))
    assert digest == definition_hash(probed, {"/etc/web.conf": "aaa"}), "probe, ports and boot do not restart"


def test_unit_sections_carry_the_mark_the_hash_and_quoted_values():
    spec = normalize(web(environment={"MSG": 'say "hi" 100%'}, files=["/etc/a", "/etc/b"], after=["redis"],
                         user="web", service_options={"KillMode": "mixed"}))
    text = render_unit(unit_sections(spec, "trial", "abc123"))
    assert "X-Gymfleet-Component=trial\n" in text
    assert "X-Gymfleet-Files=/etc/a /etc/b\n" in text
    assert 'Environment="MSG=say \\"hi\\" 100%%"\n' in text
    assert "X-Gymfleet-Definition=abc123\n" in text
    # Each start records what it started from, as root, before the program runs.
    assert ('ExecStartPre=+/bin/sh -c "mkdir -p /run/gymfleet/services && echo \\"abc123 $$INVOCATION_ID\\" '
            '> /run/gymfleet/services/web@8000.service"\n') in text
    assert "After=redis.service\n" in text and "Group=web\n" in text and "KillMode=mixed\n" in text
    assert "ExecStart=/usr/bin/python3 -m http.server\n" in text


class FakeModule:
    """Stand-in for AnsibleModule: records commands and answers `systemctl show` from a table."""

    check_mode = False

    def __init__(self, states=None):
        self.states = states or {}
        self.calls = []

    def run_command(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            units = argv[argv.index("--") + 1:]
            blocks = []
            for unit in units:
                props = {"Id": unit, "ActiveState": "inactive", "SubState": "dead", "MainPID": "0", "NRestarts": "0",
                         "NeedDaemonReload": "no", "UnitFileState": "disabled", **self.states.get(unit, {})}
                blocks.append("\n".join(f"{k}={v}" for k, v in props.items()))
            return 0, "\n\n".join(blocks) + "\n", ""
        return 0, "", ""


def test_plan_writes_what_differs_and_removes_only_this_components_units(tmp_path):
    (tmp_path / "old@1.service").write_text("[Unit]\nX-Gymfleet-Component=trial\nX-Gymfleet-Files=/etc/old-1\n")
    (tmp_path / "theirs.service").write_text("[Unit]\nX-Gymfleet-Component=other\n")
    (tmp_path / "admins.service").write_text("[Unit]\nDescription=not ours\n")
    runtime = SystemdRuntime(FakeModule({"old@1.service": {"ActiveState": "active"}}), "trial", str(tmp_path))
    plan = runtime.plan(normalize_all([web("web@8000")]), prune=True)
    assert [w["unit"] for w in plan["write"]] == ["web@8000.service"]
    assert [(r["unit"], r["files"]) for r in plan["remove"]] == [("old@1.service", ["/etc/old-1"])]
    assert plan["units"]["old@1.service"]["active_state"] == "active"
    # Once written, the same declaration plans nothing.
    (tmp_path / "web@8000.service").write_text(plan["write"][0]["content"])
    assert runtime.plan(normalize_all([web("web@8000")]), prune=False)["write"] == []


@pytest.mark.parametrize("name, owner", [("theirs", "component other"), ("admins", "someone else")])
def test_plan_refuses_a_unit_that_is_not_this_components(tmp_path, name, owner):
    (tmp_path / "theirs.service").write_text("[Unit]\nX-Gymfleet-Component=other\n")
    (tmp_path / "admins.service").write_text("[Unit]\nDescription=not ours\n")
    with pytest.raises(ServiceFailure, match=owner):
        SystemdRuntime(FakeModule(), "trial", str(tmp_path)).plan(normalize_all([web(name)]), prune=True)


def test_plan_adopts_a_unit_of_an_earlier_gymfleet(tmp_path):
    (tmp_path / "web@8000.service").write_text("# Managed by gymfleet; local changes are overwritten.\n[Unit]\n")
    plan = SystemdRuntime(FakeModule(), "trial", str(tmp_path)).plan(normalize_all([web("web@8000")]), prune=True)
    assert [w["unit"] for w in plan["write"]] == ["web@8000.service"]


def test_units_of_an_earlier_gymfleet_are_adopted_by_name_only(tmp_path):
    legacy = "# Managed by gymfleet; local changes are overwritten.\n[Unit]\n"
    for name in ("omniboxes-master.service", "omniboxes-instance@.service", "ray-head.service"):
        (tmp_path / name).write_text(legacy)
    (tmp_path / "omniboxes-mine.service").write_text("[Unit]\nDescription=an administrator's\n")
    module = FakeModule()
    runtime = SystemdRuntime(module, "omniboxes", str(tmp_path), adopt=["omniboxes-*"])
    plan = runtime.plan(normalize_all([web("omniboxes-node")]), prune=True)
    assert sorted(r["unit"] for r in plan["remove"]) == ["omniboxes-instance@.service", "omniboxes-master.service"]
    runtime.remove(plan["remove"])
    stops = [call for call in module.calls if call[:2] == ["systemctl", "stop"]]
    assert stops == [["systemctl", "stop", "--", "omniboxes-master.service"]], "a template has no run to stop"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["omniboxes-mine.service", "ray-head.service"]


def test_staleness_is_read_from_the_record_of_the_current_run(monkeypatch, tmp_path):
    monkeypatch.setattr(systemd_services, "RECORD_DIR", str(tmp_path))
    (tmp_path / "web.service").write_text("abc 0123456789abcdef\n")
    runtime = SystemdRuntime(FakeModule(), "trial")
    current = {"active_state": "active", "invocation": "0123456789abcdef"}
    assert runtime.running_hash("web.service", current) == "abc"
    assert not runtime.is_stale("web.service", current, "abc")
    assert runtime.is_stale("web.service", current, "def"), "another definition"
    assert runtime.is_stale("web.service", {**current, "invocation": "fedcba"}, "abc"), "a run nobody recorded"
    assert runtime.is_stale("other.service", current, "abc"), "no record at all"
    assert not runtime.is_stale("web.service", {"active_state": "inactive", "invocation": ""}, "x"), "it starts"


def test_stop_is_one_transaction_and_skips_what_does_not_run():
    module = FakeModule({"a.service": {"ActiveState": "active"}, "c.service": {"ActiveState": "activating"}})
    stopped = SystemdRuntime(module, "trial").stop(["a.service", "b.service", "c.service"])
    assert stopped == ["a.service", "c.service"]
    acts = [call for call in module.calls if call[:2] != ["systemctl", "show"]]
    assert acts == [["systemctl", "stop", "--", "a.service", "c.service"],
                    ["systemctl", "reset-failed", "--", "a.service", "c.service"]]
    idle = FakeModule({"a.service": {"ActiveState": "inactive"}})
    assert SystemdRuntime(idle, "trial").stop(["a.service"]) == []
    assert [call[:2] for call in idle.calls] == [["systemctl", "show"]], "nothing runs, nothing asked"


def test_displaced_units_are_stopped_disabled_and_reset_but_never_removed():
    module = FakeModule({"redis-server.service": {"ActiveState": "failed", "UnitFileState": "enabled"},
                         "other.service": {"ActiveState": "active"}})
    displaced = SystemdRuntime(module, "trial").displace(["redis-server", "other.service", "absent.service"])
    assert displaced == ["redis-server.service", "other.service"]
    acts = [call for call in module.calls if call[:2] != ["systemctl", "show"]]
    assert acts == [["systemctl", "disable", "--now", "--quiet", "--", "other.service", "redis-server.service"],
                    ["systemctl", "reset-failed", "--", "other.service", "redis-server.service"]]
    quiet = FakeModule({"redis-server.service": {"ActiveState": "inactive", "UnitFileState": "disabled"}})
    assert SystemdRuntime(quiet, "trial").displace(["redis-server.service"]) == []
    assert [call[:2] for call in quiet.calls] == [["systemctl", "show"]], "nothing to do, nothing asked"


def test_journal_lines_are_asked_since_the_start_and_the_last_ones_kept():
    class Chatty(FakeModule):
        def run_command(self, argv):
            self.calls.append(argv)
            return 0, "".join(f"line {n}\n" for n in range(40)), ""

    module = Chatty()
    lines = SystemdRuntime(module, "trial").journal("web.service", 1000.5)
    assert module.calls[-1][-2:] == ["--since", "@999"]
    # journalctl's -n with --since would keep the first lines after it, so it is not asked for.
    assert "-n" not in module.calls[-1]
    assert lines == [f"line {n}" for n in range(25, 40)]


def test_probes_http_tcp_and_command():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_response(200 if self.headers.get("x-api-key") == "k" else 403)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/info"
    try:
        assert probe(normalize(web(health={"http": url, "headers": {"x-api-key": "k"}})))["ok"]
        answer = probe(normalize(web(health={"http": url})))
        assert not answer["ok"] and "answered 403" in answer["detail"]
        assert probe(normalize(web(health={"http": url, "expect": 403})))["ok"]
        assert probe(normalize(web(health={"tcp": f"127.0.0.1:{server.server_port}"})))["ok"]
    finally:
        server.shutdown()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert not probe(normalize(web(health={"tcp": f"127.0.0.1:{port}", "timeout": 0.5})))["ok"]
    ran = []
    answer = probe(normalize(web(health={"command": ["/bin/false"]})),
                   lambda argv: ran.append(argv) or (1, "", "not ready\n"))
    assert ran == [["/bin/false"]] and not answer["ok"] and answer["detail"].endswith("exited 1 not ready")
    assert probe(normalize(web()))["ok"], "no probe: the runtime's word counts"


def test_redis_services_declare_each_instance_with_its_files():
    services = redis_services([{"port": 6379}, {"port": "6380"}], "/etc/redis", enabled=False)
    assert [s["name"] for s in services] == ["redis-server@6379", "redis-server@6380"]
    second = normalize(services[1])
    assert second["files"] == ["/etc/redis/redis-6380.conf", "/etc/redis/redis-6380.secrets.conf"]
    assert second["ports"] == [6380] and second["health"]["target"] == "127.0.0.1:6380"
    assert second["type"] == "notify" and second["enabled"] is False


def test_marks_are_read_only_from_mark_lines():
    assert systemd_services.marks("X-Gymfleet-Component=a\nDescription=X-Gymfleet-Component=b\n") == {
        "X-Gymfleet-Component": "a"}


def test_openenv_services_carry_the_runbooks_environment():
    from ansible_collections.gymfleet.cluster.plugins.filter.openenv import openenv_services

    settings = {"python_env_path": "/opt/venv", "app": "server.app:app", "host": "10.0.0.2", "workers": 2,
                "max_concurrent_envs": 100, "environment": {"EXTRA": 1}, "user": "openenv",
                "working_directory": "/opt/project", "restart_sec": "3", "enabled": True,
                "watch": ["/opt/venv/gymfleet-requirements.txt", "/opt/project"], "probe": True}
    first, second = [normalize(s) for s in openenv_services([8000, "8001"], settings)]
    assert first["argv"] == ["/opt/venv/bin/uvicorn", "server.app:app", "--host", "10.0.0.2", "--port", "8000",
                             "--workers", "2"]
    assert second["environment"] == {"PORT": "8001", "WORKERS": "2", "MAX_CONCURRENT_ENVS": "100",
                                     "PYTHONUNBUFFERED": "1", "EXTRA": "1"}
    assert second["health"]["target"] == "http://10.0.0.2:8001/health" and second["ports"] == [8001]
    assert first["watch"] == settings["watch"] and first["files"] == [], "shared code is watched, never removed"
    assert normalize(openenv_services([8000], {**settings, "probe": False})[0])["health"] is None


OMNIBOXES = {"python": "/opt/venv/bin/python", "environment": {"DISPLAY": ":1"},
             "user": "omniboxes", "work_dir": "/var/lib/omniboxes/work", "helper": "/usr/local/lib/h.py",
             "check": "/usr/local/lib/c.py", "check_state": "/var/lib/omniboxes/check.json", "extra": "omnibox",
             "browser": "system", "browser_executable": "/usr/bin/chromium", "browsers_path": "/opt/browsers",
             "browser_check_timeout": 60, "start_timeout": 300,
             "restart": "on-failure", "restart_sec": 5, "enabled": True, "watch": ["/opt/src"],
             "helper_watch": ["/usr/local/lib"], "master_port": 7000, "master_workers": 4,
             "master_redis_host": "10.0.0.1", "master_redis_port": 6379, "node_port": 8080, "node_workers": 4,
             "redis_port": 6380, "instance_ports": [9000, 9001, 9002], "instance_start_timeout": 120,
             "max_parallel": 2, "advertise_url": "http://10.0.0.2:8080", "registry_hostname": "node2",
             "api_key": "default_key", "registry_ttl": 120, "heartbeat_seconds": 30, "registrar_check_seconds": 2}


@pytest.mark.parametrize("master, worker, names", [
    (True, False, ["omniboxes-check", "omniboxes-master"]),
    (False, True, ["omniboxes-check", "omniboxes-instance@9000", "omniboxes-instance@9001", "omniboxes-instance@9002",
                   "omniboxes-instances", "omniboxes-pool", "omniboxes-node", "omniboxes-registrar"]),
    (True, True, ["omniboxes-check", "omniboxes-instance@9000", "omniboxes-instance@9001", "omniboxes-instance@9002",
                  "omniboxes-instances", "omniboxes-pool", "omniboxes-node", "omniboxes-master"]),
])
def test_omniboxes_services_follow_the_mode(master, worker, names):
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_services

    specs = normalize_all(omniboxes_services({**OMNIBOXES, "is_master": master, "is_worker": worker}))
    assert [s["name"] for s in specs] == names
    levels = [[s["name"] for s in level] for level in start_levels(specs)]
    # The check (and, on a worker, the pool's keeper, which needs only the pool's Redis); then instance servers
    # and, beside them, the master (its start overlaps the nodes', and its first read of the registry comes after
    # theirs); the boot-time starter, the node, then the registrar.
    assert levels[0] == ["omniboxes-check"] + (["omniboxes-pool"] if worker else [])
    if worker:
        assert levels[1] == names[1:4] + (["omniboxes-master"] if master else [])
        assert levels[2] == ["omniboxes-instances"] and levels[3] == ["omniboxes-node"]
        assert levels[4:] == ([] if master else [["omniboxes-registrar"]])
    else:
        assert levels[1] == ["omniboxes-master"]
    by_name = {s["name"]: s for s in specs}
    check = by_name["omniboxes-check"]
    # A master alone launches no browser; a worker launches the one it is given, as the servers' user.
    browser = check["argv"][check["argv"].index("--browser") + 1]
    assert browser == ("system" if worker else "none")
    assert check["type"] == "oneshot" and check["user"] is None and check["enabled"] is False
    if master:
        argv = by_name["omniboxes-master"]["argv"]
        assert ("--nodes" in argv) == worker, "mode both names its own node by URL"
        assert "omniboxes-check" in by_name["omniboxes-master"]["requires"]
    if worker:
        instance = by_name["omniboxes-instance@9001"]
        # Stopping the batch starter stops the instance servers too (systemd's PartOf); a restart of the pool's
        # Redis leaves them running, and the keeper, started with that Redis, adds back the ports of those that
        # are free (the unit test of keep-pool).
        assert instance["part_of"] == ["omniboxes-instances"] and instance["enabled"] is False
        assert "redis-server@6380" in instance["wants"] and "redis-server@6380" not in instance["requires"]
        keeper = by_name["omniboxes-pool"]
        assert keeper["argv"][2:] == ["keep-pool", "--redis-port", "6380", "--first", "9000", "--count", "3",
                                      "--api-key", "default_key"]
        assert keeper["restart"] == "always" and keeper["after"] == ["redis-server@6380"]
        assert "ExecStop" not in by_name["omniboxes-instances"]["service_options"]
        assert instance["environment"] == {"PYTHONUNBUFFERED": "1", "PLAYWRIGHT_BROWSERS_PATH": "/opt/browsers",
                                           "DISPLAY": ":1"}
        # The check must pass before an instance server starts, and a server that dies before it listens fails
        # its start at once (wait-port follows its PID).
        assert "omniboxes-check" in instance["requires"] and "omniboxes-check" in instance["after"]
        assert "--pid $MAINPID" in instance["service_options"]["ExecStartPost"]
        assert by_name["omniboxes-node"]["health"]["headers"] == {"x-api-key": "default_key"}
    if worker and not master:
        registrar = by_name["omniboxes-registrar"]
        assert registrar["restart"] == "always" and registrar["part_of"] == ["omniboxes-node"]


def test_a_worker_only_node_pulls_in_its_registrar():
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_services

    worker = {s["name"]: s for s in omniboxes_services({**OMNIBOXES, "is_master": False, "is_worker": True})}
    both = {s["name"]: s for s in omniboxes_services({**OMNIBOXES, "is_master": True, "is_worker": True})}
    assert "omniboxes-registrar" in worker["omniboxes-node"]["wants"]
    assert "omniboxes-registrar" not in both["omniboxes-node"]["wants"]


def test_check_mode_reports_the_plan_and_changes_nothing(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.modules.services import converge

    (tmp_path / "old.service").write_text("[Unit]\nX-Gymfleet-Component=trial\n")
    module = FakeModule({"old.service": {"ActiveState": "active"}, "redis-server.service": {"ActiveState": "active"}})
    module.check_mode, module._diff = True, True
    module.params = {"state": "started", "timeout": 10, "prune": True, "apply_changes": True, "parallel": 2,
                     "displace": ["redis-server"]}
    result = converge(module, SystemdRuntime(module, "trial", str(tmp_path)), normalize_all([web("web@8000")]))
    assert result["changed"] is True
    assert result["written"] == ["web@8000.service"] and result["started"] == ["web@8000.service"]
    assert result["removed"] == ["old.service"] and result["displaced"] == ["redis-server.service"]
    assert [d["after_header"] for d in result["diff"]] == [str(tmp_path / "web@8000.service"),
                                                          str(tmp_path / "old.service")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.service"], "no file written or removed"
    assert all(call[:2] == ["systemctl", "show"] for call in module.calls), module.calls


def test_apply_changes_false_only_starts_what_does_not_run(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.modules.services import converge

    module = FakeModule({"web@8000.service": {"ActiveState": "active"}})
    module.check_mode, module._diff = True, False
    module.params = {"state": "started", "timeout": 10, "prune": True, "apply_changes": False, "parallel": 2,
                     "displace": []}
    result = converge(module, SystemdRuntime(module, "trial", str(tmp_path)),
                      normalize_all([web("web@8000"), web("web@8001")]))
    assert result["written"] == [] and result["removed"] == [] and result["restarted"] == []
    assert result["started"] == ["web@8001.service"]


def test_a_unit_pulled_in_by_another_is_waited_for_not_started_again():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    module = FakeModule({"registrar.service": {"ActiveState": "active", "SubState": "running", "InvocationID": "a1"}})
    SystemdRuntime(module, "trial").start([(normalize(web("registrar")), "start")], Deadline(5), 2)
    assert not [call for call in module.calls if call[:2] == ["systemctl", "start"]]


def test_a_start_that_never_begins_times_out_with_the_journal():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    module = FakeModule()
    with pytest.raises(ServiceFailure, match="web.service not healthy in time") as failure:
        SystemdRuntime(module, "trial").start([(normalize(web("web")), "start")], Deadline(0.5), 2)
    assert ["systemctl", "start", "--no-block", "--", "web.service"] in module.calls
    assert failure.value.details["unit"] == "web.service"


def test_a_death_while_starting_is_reported_with_the_last_words_that_reach_the_journal_late():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    class DyingService(FakeModule):
        """The unit's new run dies at once; the journal gets its last words only on the second read, as journald
        may (a process's output stream lags behind systemd's view of its death)."""

        def __init__(self):
            super().__init__({"web.service": {"ActiveState": "inactive", "InvocationID": "old"}})
            self.reads = 0

        def run_command(self, argv):
            if argv[:2] == ["systemctl", "start"]:
                self.states["web.service"] = {"ActiveState": "failed", "SubState": "failed", "InvocationID": "new",
                                              "ExecMainStatus": "1"}
            if argv[0] == "journalctl":
                self.calls.append(argv)
                self.reads += 1
                early = ["Starting web.service...", "INFO: Started server process [7]"]
                late = ["ERROR: [Errno 98] address already in use",
                        "web.service: Main process exited, code=exited, status=1/FAILURE"]
                return 0, "\n".join(early + (late if self.reads > 1 else [])) + "\n", ""
            return super().run_command(argv)

    module = DyingService()
    with pytest.raises(ServiceFailure, match="web.service died while starting") as failure:
        SystemdRuntime(module, "trial").start([(normalize(web("web")), "start")], Deadline(30), 2)
    assert "address already in use" in str(failure.value)
    assert module.reads == 2, "read again until systemd's exit line was there, and no more"


def test_an_active_oneshot_counts_as_started_at_once():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    class Oneshot(FakeModule):
        def run_command(self, argv):
            if argv[:2] == ["systemctl", "start"]:
                self.states["check.service"] = {"ActiveState": "active", "SubState": "exited", "InvocationID": "new"}
            return super().run_command(argv)

    module = Oneshot({"check.service": {"ActiveState": "inactive", "InvocationID": "old"}})
    spec = normalize({**web("check"), "type": "oneshot", "health": None})
    SystemdRuntime(module, "trial").start([(spec, "start")], Deadline(30), 2)
    shows = [call for call in module.calls if call[:2] == ["systemctl", "show"]]
    # The state before the start and one look after it: no settling time, which only a long-running process needs.
    assert len(shows) == 2, shows


def test_installed_writes_and_prunes_but_starts_nothing_and_reports_what_is_stale(tmp_path):
    import shutil

    from ansible_collections.gymfleet.cluster.plugins.modules.services import converge

    (tmp_path / "gone.service").write_text("[Unit]\nX-Gymfleet-Component=trial\n")
    module = FakeModule({"web@8000.service": {"ActiveState": "active", "SubState": "running"},
                         "gone.service": {"ActiveState": "active"}})
    module.atomic_move = shutil.move
    module._diff = False
    module.params = {"state": "installed", "timeout": 10, "prune": True, "apply_changes": True, "parallel": 2,
                     "displace": []}
    result = converge(module, SystemdRuntime(module, "trial", str(tmp_path)),
                      normalize_all([web("web@8000"), web("web@8001", enabled=False)]))
    assert result["written"] == ["web@8000.service", "web@8001.service"] and result["removed"] == ["gone.service"]
    assert result["started"] == [] and result["restarted"] == [] and result["changed"] is True
    verbs = [call[1] for call in module.calls if call[0] == "systemctl"]
    assert "start" not in verbs and "restart" not in verbs
    assert ["systemctl", "stop", "--", "gone.service"] in module.calls
    assert ["systemctl", "enable", "--quiet", "--", "web@8000.service"] in module.calls
    # The running process was started from no record of this definition: stale; the one not running is not.
    assert {s["name"]: s["stale"] for s in result["services"]} == {"web@8000": True, "web@8001": False}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web@8000.service", "web@8001.service"]


def test_services_started_looks_at_every_hosts_result():
    quiet = {"changed": False, "started": [], "restarted": []}
    assert services_started([quiet, {}, {"skipped": True}, quiet]) is False
    assert services_started([quiet, {**quiet, "restarted": ["ray-worker.service"]}]) is True
    assert services_started([{}, {**quiet, "started": ["omniboxes-node.service"]}]) is True
    assert services_started([]) is False


def test_a_slow_service_holds_up_only_what_comes_after_it():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    class Timed(FakeModule):
        """A unit becomes active (new run) when started; `slow.service` only after several looks."""

        def __init__(self):
            super().__init__({u: {"InvocationID": "old"} for u in ("slow.service", "fast.service", "next.service")})
            self.looks = 0
            self.slow_up_at_start = {}

        def run_command(self, argv):
            if argv[:2] == ["systemctl", "start"]:
                for unit in argv[argv.index("--") + 1:]:
                    self.slow_up_at_start[unit] = self.states["slow.service"].get("ActiveState") == "active"
                    if unit != "slow.service":
                        self.states[unit] = {"ActiveState": "active", "SubState": "exited", "InvocationID": "new"}
            if argv[:2] == ["systemctl", "show"] and "slow.service" in argv:
                self.looks += 1
                if self.looks == 6:
                    self.states["slow.service"] = {"ActiveState": "active", "SubState": "exited", "InvocationID": "n"}
            return super().run_command(argv)

    def oneshot(name, after=()):
        return normalize({**web(name), "type": "oneshot", "health": None, "after": list(after)})

    module = Timed()
    actions = [(oneshot("slow"), "start"), (oneshot("fast"), "start"), (oneshot("next", ["fast"]), "start"),
               (oneshot("last", ["slow"]), "start")]
    SystemdRuntime(module, "trial").start(actions, Deadline(30), 4)
    starts = [call[call.index("--") + 1:] for call in module.calls if call[:2] == ["systemctl", "start"]]
    # `next` waits for `fast` only: it starts while `slow` is still coming up; `last` only once `slow` is up.
    assert starts == [["slow.service", "fast.service"], ["next.service"], ["last.service"]]
    assert module.slow_up_at_start == {"slow.service": False, "fast.service": False, "next.service": False,
                                       "last.service": True}


def test_parallel_bounds_how_many_start_at_once():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.services import Deadline

    class Instant(FakeModule):
        def run_command(self, argv):
            if argv[:2] == ["systemctl", "start"]:
                for unit in argv[argv.index("--") + 1:]:
                    self.states[unit] = {"ActiveState": "active", "SubState": "exited", "InvocationID": "new"}
            return super().run_command(argv)

    module = Instant({f"i{n}.service": {"InvocationID": "old"} for n in range(5)})
    specs = [normalize({**web(f"i{n}"), "type": "oneshot", "health": None}) for n in range(5)]
    SystemdRuntime(module, "trial").start([(spec, "start") for spec in specs], Deadline(30), 2)
    starts = [call[call.index("--") + 1:] for call in module.calls if call[:2] == ["systemctl", "start"]]
    assert starts == [["i0.service", "i1.service"], ["i2.service", "i3.service"], ["i4.service"]]


def test_installed_units_tell_their_order_health_and_ports_without_the_declarations(tmp_path):
    """A unit the engine wrote carries enough of its declaration to be started, restarted, stopped and probed
    without the role's variables: what `gymfleet start` and the generic entry points use."""
    from ansible_collections.gymfleet.cluster.plugins.modules.services import converge

    api = web("api@8000", health={"http": "http://127.0.0.1:8000/health"})
    worker = web("worker@9000", after=["api@8000"], ports=[9000], health=None)
    for spec in normalize_all([api, worker]):
        text = render_unit(unit_sections(spec, "trial", definition_hash(spec, {})))
        (tmp_path / f"{spec['name']}.service").write_text(text)
    (tmp_path / "other.service").write_text("[Unit]\nX-Gymfleet-Component=someone-else\n")
    runtime = SystemdRuntime(None, "trial", str(tmp_path))
    installed = {spec["name"]: spec for spec in runtime.installed_specs()}
    assert sorted(installed) == ["api@8000", "worker@9000"]
    assert installed["api@8000"]["health"] == normalize(api)["health"], "the same probe as the declaration's"
    assert (installed["worker@9000"]["after"], installed["worker@9000"]["ports"]) == (["api@8000"], [9000])

    module = FakeModule({"api@8000.service": {"ActiveState": "active"}, "worker@9000.service": {}})
    module.check_mode, module._diff = True, False
    module.params = {"state": "started", "timeout": 10, "prune": False, "apply_changes": False, "parallel": 2,
                     "displace": []}
    runtime = SystemdRuntime(module, "trial", str(tmp_path))
    result = converge(module, runtime, runtime.installed_specs(), touch_enablement=False)
    assert (result["started"], result["written"], result["removed"]) == (["worker@9000.service"], [], [])


def call(component, *services, **options):
    """One component's full set of module options, as AnsibleModule would have filled them in."""
    return {"component": component, "services": [web(name) for name in services], "state": "started",
            "prune": True, "apply_changes": True, "timeout": 10, "parallel": 2, "adopt": [], "displace": [],
            "chains": [], "layout": None, "environments": [], "runtime": "systemd", "slurm": None,
            "installed": False, **options}


class Failed(Exception):
    pass


def test_calls_run_each_component_in_turn_in_one_module_run(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.modules.services import run_calls

    module = FakeModule({"api@9000.service": {"ActiveState": "active"}})
    module.check_mode, module._diff = True, True
    module.params = {"calls": [call("web", "web@8000", unit_dir=str(tmp_path)),
                               call("api", unit_dir=str(tmp_path), services=[])]}
    (tmp_path / "api@9000.service").write_text("[Unit]\nX-Gymfleet-Component=api\n")
    result = run_calls(module)
    assert [r["component"] for r in result["results"]] == ["web", "api"]
    assert result["results"][0]["written"] == ["web@8000.service"] and result["results"][1]["removed"] == [
        "api@9000.service"]
    assert result["changed"] is True
    # The diffs of both calls come together at the top, none is left inside a call's own result.
    assert [d["after_header"] for d in result["diff"]] == [str(tmp_path / "web@8000.service"),
                                                          str(tmp_path / "api@9000.service")]
    assert not any("diff" in r for r in result["results"])


def test_a_failing_call_ends_the_run_naming_its_component(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.modules.services import run_calls

    module = FakeModule()
    module.check_mode, module._diff = True, False

    def fail_json(msg, **details):
        raise Failed(msg)

    module.fail_json = fail_json
    module.params = {"calls": [call("web", "web@8000", unit_dir=str(tmp_path)), call("Bad Name"),
                               call("never", "never@1", unit_dir=str(tmp_path))]}
    with pytest.raises(Failed, match=r"component 'Bad Name': use lower-case"):
        run_calls(module)
    assert not any(argv for argv in module.calls if "never@1.service" in argv)
