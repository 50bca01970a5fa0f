"""The run state and the progress display, fed runner events recorded from real runs (tools/record_run.py)."""

import io
import json
import re
from pathlib import Path

import pytest

from gymfleet.events import RunState, failure_message
from gymfleet.progress import HOSTS_SHOWN, Display, host_lines

DATA = Path(__file__).parent / "data"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def recorded(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def replay(display, events):
    for event in events:
        display.feed(event)
    display.finish()
    return display.stream.getvalue()


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_state_of_a_run_with_an_unreachable_host():
    state = RunState()
    for event in recorded("preflight-unreachable.jsonl"):
        state.feed(event)
    assert state.finished
    assert state.tasks_done == state.tasks_total == 2
    assert [(f.host, f.unreachable) for f in state.failures] == [("gone-node", True)]
    assert "Connection refused" in state.failures[0].message
    assert state.hosts["gone-node"].status == "unreachable"
    assert state.hosts["local-node"].status == "ok"
    assert state.hosts["local-node"].current_task is None


def test_failures_a_rescue_handled_do_not_stand():
    """deploy-failed: pip fails inside a block on 3 hosts, the rescue reports it with the fix and fails."""
    state = RunState()
    for event in recorded("deploy-failed.jsonl"):
        state.feed(event)
    assert sorted((f.host, f.task) for f in state.failures) == [
        (f"demobench-node{n}", "Report the failed install") for n in (1, 2, 3)]
    assert all("No matching distribution found" in f.message and "fix:" in f.message for f in state.failures)
    assert all(host.failed == 1 and host.rescued == 1 for host in state.hosts.values())


@pytest.mark.parametrize("recording", ["preflight-unreachable.jsonl", "status-demo.jsonl", "deploy-failed.jsonl"])
def test_plain_mode_prints_lines_and_no_control_characters(recording):
    events = recorded(recording)
    out = replay(Display("run", stream=io.StringIO(), live=False), events)
    assert "\x1b" not in out and "\r" not in out
    started = sum(e["event"] in ("playbook_on_task_start", "playbook_on_handler_task_start") for e in events)
    numbered = re.findall(r"^\[(\d+)/(\d+)\] ", out, re.M)
    assert [int(done) for done, _ in numbered] == list(range(1, started + 1))
    assert all(int(done) <= int(total) for done, total in numbered)
    failures = [e for e in events if e["event"] in ("runner_on_failed", "runner_on_unreachable")
                and not e["event_data"].get("ignore_errors")]
    for event in failures:
        host, task = event["event_data"]["host"], event["event_data"]["task"]
        assert re.search(rf"^(FAILED|UNREACHABLE) {re.escape(host)} \| {re.escape(task)} \| \S", out, re.M)
    assert out.rstrip().splitlines()[-1].startswith(f"run  tasks {started}/{started}  hosts ")


def test_live_mode_redraws_in_place_and_keeps_failures_above():
    events = recorded("deploy-failed.jsonl")
    out = replay(Display("deploy", stream=Terminal(), live=True), events)
    assert "\x1b[2K" in out and re.search(r"\x1b\[\d+F", out)
    # What stays on the screen: the failure lines, then the last drawn block.
    final = ANSI.sub("", out.rsplit("\x1b[J", 2)[-2] if out.count("\x1b[J") > 1 else out)
    assert "deploy  tasks" in final
    failure_lines = [line for line in ANSI.sub("", out).splitlines() if line.startswith("FAILED ")]
    expected = [e for e in events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    assert len(failure_lines) == len(expected) >= 1


def test_live_block_shows_the_task_each_host_is_on():
    state = RunState()
    for event in recorded("status-demo.jsonl"):
        state.feed(event)
        if event["event"] == "runner_on_start":
            lines = host_lines(state, 200)
            host = event["event_data"]["host"]
            line = next(line for line in lines if line.split()[0] == host)
            assert line.endswith(event["event_data"]["task"])


def test_many_hosts_are_grouped_by_task():
    state = RunState()
    for index in range(HOSTS_SHOWN + 40):
        state.feed({"event": "runner_on_start", "event_data": {"host": f"h{index:03d}", "task": "Install Ray"}})
    state.feed({"event": "runner_on_start", "event_data": {"host": "h000", "task": "Start Ray"}})
    assert host_lines(state, 120) == ["  Install Ray: 47 hosts", "  Start Ray: 1 host"]


def test_failure_message_of_a_loop_names_the_item():
    res = {"msg": "", "results": [{"failed": False, "item": 1}, {"failed": True, "item": 6379, "msg": "port  in\nuse"}]}
    assert failure_message(res) == "item 6379: port in use"
    assert failure_message({"exception": "Traceback\n  x\nValueError: bad"}) == "ValueError: bad"
    assert failure_message({}) == "failed without a message"


def test_a_module_that_returned_nothing_says_what_the_connection_said():
    res = {"msg": "host node2: Module result deserialization failed: No start of json char found", "module_stdout": "",
           "module_stderr": "Error response from daemon: Container node2 is paused, unpause the container before exec"}
    assert failure_message(res) == ("host node2: Module result deserialization failed: No start of json char found: "
                                    "Error response from daemon: Container node2 is paused, unpause the container "
                                    "before exec")
    # A host whose power went: the connection printed its error where the module's JSON should have been.
    gone = {"msg": "Module result deserialization failed: No start of json char found", "module_stderr": "", "rc": 126,
            "module_stdout": "OCI runtime exec failed: exec failed: unable to start container process\r\n"}
    assert failure_message(gone).endswith("No start of json char found: OCI runtime exec failed: exec failed: "
                                          "unable to start container process")


def test_verbose_mode_prints_ansibles_own_text_and_nothing_else():
    events = [{"event": "playbook_on_task_start", "stdout": "\nTASK [Install redis-server] ***",
               "event_data": {"task": "Install redis-server", "play": "p"}},
              {"event": "runner_on_failed", "stdout": 'fatal: [node1]: FAILED! => {"msg": "no"}',
               "event_data": {"host": "node1", "task": "Install redis-server", "res": {"msg": "no"}}},
              {"event": "verbose", "stdout": ""}]
    out = replay(Display("deploy", stream=Terminal(), live=True, verbose=True), events)
    assert out == '\nTASK [Install redis-server] ***\nfatal: [node1]: FAILED! => {"msg": "no"}\n'
