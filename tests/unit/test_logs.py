"""gymfleet logs: the module that reads one host's service logs, and the CLI that merges hosts by time."""

import os
from datetime import datetime

import pytest
from ansible_collections.gymfleet.cluster.plugins.modules import service_logs
from ansible_collections.gymfleet.cluster.plugins.modules.service_logs import (
    file_entries,
    journal_entries,
    line_time,
    unit_marks,
)

from gymfleet import logs
from gymfleet.errors import GymfleetError

from .modhelper import run_module

ROOT = logs.Path(__file__).resolve().parents[2]


def write_unit(folder, name, component, extra=""):
    (folder / name).write_text(f"[Unit]\nDescription=x\nX-Gymfleet-Component={component}\n{extra}[Service]\n"
                               "ExecStart=/bin/true\n")


def test_the_units_of_a_component_and_the_logs_they_name(tmp_path):
    write_unit(tmp_path, "ray-head.service", "ray", "X-Gymfleet-Logs=/r/*.out /r/*.err\n")
    write_unit(tmp_path, "omniboxes-node.service", "omniboxes")
    write_unit(tmp_path, "omniboxes-redis@6380.service", "omniboxes-redis")
    write_unit(tmp_path, "rayish.service", "rayish")
    (tmp_path / "someone-elses.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert unit_marks(str(tmp_path), ["ray"]) == {"ray-head.service": ["/r/*.out", "/r/*.err"]}
    assert unit_marks(str(tmp_path), ["omniboxes"]) == {"omniboxes-node.service": [],
                                                       "omniboxes-redis@6380.service": []}


def test_journal_entries_from_journalctl_json():
    text = ('{"__REALTIME_TIMESTAMP": "1796547600250000", "_SYSTEMD_UNIT": "ray-head.service", "MESSAGE": "up"}\n'
            '{"__REALTIME_TIMESTAMP": "1796547601000000", "_SYSTEMD_UNIT": "init.scope", "UNIT": "ray-head.service", '
            '"MESSAGE": [104, 105]}\n'
            "not json\n")
    assert journal_entries(text) == [
        {"time": 1796547600.25, "source": "ray-head.service", "message": "up"},
        {"time": 1796547601.0, "source": "ray-head.service", "message": "hi"}]


def test_lines_of_a_log_file_get_the_time_they_start_with(tmp_path):
    path = tmp_path / "raylet.out"
    path.write_text("banner without a time\n[2026-12-06 09:00:01,250 I 1 1] started\n  continued\n"
                    "2026-12-06 09:00:03.5 INFO later\n")
    os.utime(path, (1000, 1000))
    entries = file_entries(str(path), 0, 10)
    first = datetime(2026, 12, 6, 9, 0, 1).timestamp()
    assert [(e["time"], e["message"]) for e in entries] == [
        (1000, "banner without a time"), (first + 0.25, "[2026-12-06 09:00:01,250 I 1 1] started"),
        (first + 0.25, "  continued"), (first + 2.5, "2026-12-06 09:00:03.5 INFO later")]
    assert [e["message"] for e in file_entries(str(path), first + 1, 10)] == ["2026-12-06 09:00:03.5 INFO later"]
    assert len(file_entries(str(path), 0, 2)) == 2
    assert line_time("no time") is None and line_time("2026-13-45 99:00:00 bad") is None


def test_the_module_reads_the_journal_and_the_files_of_its_units(tmp_path, monkeypatch):
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    (logs_dir / "gcs_server.out").write_text("2026-12-06 09:00:02 gcs ready\n")
    write_unit(tmp_path, "ray-head.service", "ray", f"X-Gymfleet-Logs={logs_dir}/*.out\n")
    calls = []

    def journalctl(self, argv, **_):
        calls.append(argv)
        started = int(datetime(2026, 12, 6, 9, 0, 1).timestamp() * 1e6)
        return 0, f'{{"__REALTIME_TIMESTAMP": "{started}", "_SYSTEMD_UNIT": "ray-head.service", ' \
                  '"MESSAGE": "Started"}\n', ""

    monkeypatch.setattr(service_logs.AnsibleModule, "run_command", journalctl)
    monkeypatch.setattr(service_logs.AnsibleModule, "get_bin_path", lambda self, name, **_: f"/usr/bin/{name}")
    result = run_module(service_logs.main, {"components": ["ray"], "unit_dir": str(tmp_path), "since": 5.5,
                                            "lines": 7})
    assert calls == [["/usr/bin/journalctl", "-o", "json", "--no-pager", "-n", "7", "-u", "ray-head.service",
                      "--since", "@5.500000"]]
    assert result["units"] == ["ray-head.service"] and result["files"] == [str(logs_dir / "gcs_server.out")]
    # Oldest first, whichever source each comes from.
    assert [e["message"] for e in result["entries"]] == ["Started", "2026-12-06 09:00:02 gcs ready"]
    assert result["changed"] is False


@pytest.mark.parametrize(("text", "ago"), [("30s", 30), ("10m", 600), ("10min", 600), ("2h", 7200), ("1d", 86400)])
def test_since_as_a_duration_ago(text, ago):
    assert logs.parse_since(text, now=10_000.0) == 10_000.0 - ago


def test_since_as_a_time():
    assert logs.parse_since("@1796547600.5") == 1796547600.5
    assert logs.parse_since("2026-12-06 09:00") == datetime(2026, 12, 6, 9, 0).timestamp()
    assert logs.parse_since("2026-12-06T09:00:05") == datetime(2026, 12, 6, 9, 0, 5).timestamp()
    with pytest.raises(GymfleetError, match=r"^--since yesterday-ish: not a time; fix: give a duration ago"):
        logs.parse_since("yesterday-ish")


def test_a_system_is_its_roles_on_their_groups():
    assert logs.system_components(ROOT, "openenv") == (["openenv", "envoy"], ["openenv_worker", "openenv_envoy"])
    with pytest.raises(GymfleetError, match=r"^no system named 'rays'; fix: use one of cluster, tailscale, "):
        logs.system_components(ROOT, "rays")


def test_an_entry_is_one_line_with_the_host_in_front():
    moment = datetime(2026, 12, 6, 9, 0, 1, 250000).timestamp()
    assert logs.Entry(moment, "node1", "ray-head.service", "up").line() == \
        "2026-12-06 09:00:01.250 node1 ray-head.service: up"
