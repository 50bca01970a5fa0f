"""Every run is kept: its request (never a variable's value), events, Ansible's output and result."""

import json
from pathlib import Path

import pytest

from gymfleet import cli, records
from gymfleet.errors import GymfleetError
from gymfleet.events import Failure, HostOutcome, RunResult
from gymfleet.runner import RunRequest


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("GYMFLEET_KEEP_RUNS", raising=False)
    return tmp_path / "gymfleet" / "runs"


def record(playbook="deploy", status="failed", **request_fields):
    request = RunRequest(playbook=playbook, inventory=["inv/lab"], **request_fields)
    recorder = records.Recorder(request)
    recorder.event({"event": "playbook_on_start", "uuid": "u1"})
    result = RunResult(playbook=playbook, status=status, rc=2, check=False, elapsed=12.5, tasks=3,
                       hosts={"node1": HostOutcome(host="node1", ok=2, failed=1 if status == "failed" else 0)},
                       failures=[Failure("node1", "Install redis", "p", "no package")] if status == "failed" else [],
                       run_id=recorder.run_id)
    recorder.finish(result, "PLAY [p] ***\nfatal: [node1]: FAILED!\n")
    return recorder.path, result


def test_a_run_is_kept_with_its_events_output_and_result(cache):
    path, result = record(extravars={"token": "s3cret"}, extravar_sources=[{"ray_version": "2.10"},
                                                                           Path("/etc/vars.yml")])
    assert path.parent == cache and path.stat().st_mode & 0o777 == 0o700
    assert [json.loads(line)["event"] for line in (path / "events.jsonl").read_text().splitlines()] == [
        "playbook_on_start"]
    assert (path / "stdout.txt").read_text().startswith("PLAY [p]")
    request = json.loads((path / "request.json").read_text())
    assert request["extra_variables"] == ["ray_version", "token"] and request["extra_variable_files"] == [
        "/etc/vars.yml"]
    assert "s3cret" not in "".join(f.read_text() for f in path.iterdir())
    assert records.result_of(path) == result


def test_runs_are_found_by_id_start_or_last(cache):
    first, _ = record("deploy")
    second, _ = record("status", status="successful")
    assert records.find_run("last") == second
    assert records.find_run(first.name) == first
    with pytest.raises(GymfleetError, match=r"no run with an id starting 'nope'; fix: give one of `gymfleet runs`"):
        records.find_run("nope")
    with pytest.raises(GymfleetError, match=r"2 runs \("):
        records.find_run(first.name[:8])


def test_no_run_yet_says_where_runs_are_kept(cache):
    with pytest.raises(GymfleetError, match="no run is recorded in .*; fix: run a playbook first"):
        records.find_run("last")


def test_only_the_newest_runs_are_kept(cache, monkeypatch):
    monkeypatch.setenv("GYMFLEET_KEEP_RUNS", "2")
    made = [record(f"p{index}")[0].name for index in range(4)]
    assert sorted(p.name for p in cache.iterdir()) == sorted(made)[-2:]
    monkeypatch.setenv("GYMFLEET_KEEP_RUNS", "0")
    with pytest.raises(GymfleetError, match="GYMFLEET_KEEP_RUNS=0: .*fix: set it to 1 or more"):
        record("p4")


def test_an_unfinished_run_is_listed_and_said_so(cache, capsys):
    records.Recorder(RunRequest(playbook="deploy", inventory=["inv/lab"]))
    assert [run["result"] for run in records.list_runs()] == [None]
    assert cli.main(["runs"]) == 0
    assert "unfinished" in capsys.readouterr().out
    assert cli.main(["runs", "show", "last"]) == 1
    assert "no result recorded: the run is still going, or its process was killed" in capsys.readouterr().out


def test_runs_and_runs_show_replay_the_summary_and_failures(cache, capsys):
    path, _ = record("deploy")
    assert cli.main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("RUN ID") and table[1].startswith(path.name) and "FAILED" in table[1]
    assert "1 failed" in table[1] and "inv/lab" in table[1]
    assert cli.main(["runs", "show", path.name]) == 0
    shown = capsys.readouterr().out
    assert f"{path.name} (deploy): FAILED in " in shown and "FAILED node1 | Install redis | no package" in shown
    assert cli.main(["runs", "show", "last", "--output"]) == 0
    assert capsys.readouterr().out == "PLAY [p] ***\nfatal: [node1]: FAILED!\n"
    assert cli.main(["runs", "show", "last", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == path.name
    assert cli.main(["runs", "show", "zzz"]) == 5
