"""tools/test_lanes.py: parts start longest first, every part runs even after one fails, and the run's record and
closing lines say what happened. The parts here are stand-in commands, not the suite's."""

import importlib.util
import json
import sys

import pytest

from ..conftest import ROOT


@pytest.fixture
def lanes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("test_lanes_tool", ROOT / "tools" / "test_lanes.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, tool)  # dataclasses look their module up there
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "RECORD", tmp_path / "durations.json")
    monkeypatch.setattr(tool, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    # Stand-ins: each part prints its name and exits 1 when its name says so.
    monkeypatch.setattr(tool, "command",
                        lambda part: ["sh", "-c", f"echo ran {part}; case {part} in *fail*) exit 1;; esac"])
    return tool


def test_longest_first_and_every_part_runs(lanes, tmp_path):
    (tmp_path / "logs").mkdir()
    run = lanes.Lanes(["short", "fail-long", "middle"], 1, {"short": 1, "fail-long": 30, "middle": 10})
    done = run.run()
    assert [part.name for part in done] == ["fail-long", "middle", "short"]
    assert [part.passed for part in done] == [False, True, True]
    assert (tmp_path / "logs" / "middle.log").read_text() == "ran middle\n"


def test_main_records_durations_and_closes_with_the_counts(lanes, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lanes, "scenarios", lambda: ["a_fail"])
    monkeypatch.setattr("sys.argv", ["test_lanes.py", "--lanes", "2", "lint", "molecule:a_fail"])
    assert lanes.main() == 1
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == "parts: 1 passed, 1 failed"
    assert "molecule:a_fail FAILED (exit 1)" in out and "ran molecule:a_fail" in out
    assert set(json.loads((tmp_path / "durations.json").read_text())) == {"lint"}, "only passed parts are recorded"
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["lanes"] == 2 and summary["parts"]["lint"]["passed"] is True
    assert 0 <= summary["idle_share"] <= 1
