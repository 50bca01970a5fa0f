"""`gymfleet status`: the per-system summaries, the tables and the JSON document (checked by its schema)."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from gymfleet.events import RunState
from gymfleet.runner import RunRequest
from gymfleet.status import StatusReport, report_from_run

SCHEMAS = Path(__file__).resolve().parents[2] / "src" / "gymfleet" / "schemas"
DATA = Path(__file__).parent / "data"


def validator(name):
    resources = [(path.name, Resource.from_contents(json.loads(path.read_text()))) for path in SCHEMAS.glob("*.json")]
    registry = Registry().with_resources(resources)
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def replayed(name):
    from gymfleet.events import RunResult

    state = RunState()
    for line in (DATA / name).read_text().splitlines():
        state.feed(json.loads(line))
    result = RunResult(playbook="status", status="successful" if not state.failures else "failed", rc=0,
                       check=False, elapsed=1.0, tasks=state.tasks_started, hosts=state.hosts,
                       failures=state.failures)
    return report_from_run(result, state)


def test_recorded_demo_status_has_every_system_and_fits_the_schema():
    report = replayed("status-demo.jsonl")
    document = report.to_dict()
    validator("status.schema.json").validate(document)
    assert list(document["systems"]) == ["omniboxes", "ray", "openenv", "parameter_server", "firewall", "redis",
                                         "python_env"]
    systems = document["systems"]
    assert systems["omniboxes"]["summary"]["nodes_healthy"] == systems["omniboxes"]["summary"]["nodes_expected"] == 3
    assert systems["omniboxes"]["summary"]["capacity"] == 6
    assert systems["openenv"]["summary"]["servers_up"] == systems["openenv"]["summary"]["servers"] == 2
    assert systems["ray"]["summary"]["nodes_alive"] == 3 and systems["ray"]["summary"]["cpus"] == 3
    assert systems["ray"]["summary"]["dashboard_url"].startswith("http://")
    assert systems["openenv"]["summary"]["backends_healthy"] == systems["openenv"]["summary"]["backends_total"] == 2
    assert systems["parameter_server"]["summary"]["processes_expected"] == 4
    assert systems["redis"]["summary"]["reachable"] == systems["redis"]["summary"]["instances"]
    assert document["healthy"] is True
    text = report.render()
    for title in ("OmniBoxes: nodes healthy 3/3", "Ray: nodes alive 3/3", "OpenEnv / Envoy: backends healthy 2/2",
                  "Parameter servers: processes up 4/4", "Redis: reachable 3/3, keys 0", "Firewall: up 6/6"):
        assert title in text
    assert text.rstrip().endswith("healthy")


def row(host, component, state, system, summary=None, **metrics):
    """A row as a judge gives it: summary is its share of the system's numbers."""
    return {"host": host, "component": component, "state": state, "detail": "", "system": system, "metrics": metrics,
            **({"summary": summary} if summary else {})}


def report_of(rows, failures=()):
    from gymfleet.events import Failure, RunResult

    run = RunResult(playbook="status", status="failed" if failures else "successful", rc=2 if failures else 0,
                    check=False, elapsed=0.5, tasks=3, hosts={}, failures=list(failures))
    return StatusReport(run=run, rows=rows), Failure


def test_a_down_component_makes_the_report_unhealthy_and_is_named():
    report, _ = report_of([
        row("n1", "ray head", "up", "ray", role="head", alive=True,
            summary={"nodes_alive": 1, "nodes_expected": 2, "cpus": 2.0, "gpus": 0,
                     "dashboard_url": "http://10.0.0.1:8265", "version": "2.60.0"}),
        row("n2", "ray worker", "DOWN", "ray", role="worker", alive=False),
    ])
    assert report.systems["ray"]["summary"]["nodes_alive"] == 1
    assert not report.healthy
    assert report.render().rstrip().endswith("NOT healthy: n2 ray worker")
    validator("status.schema.json").validate(report.to_dict())


def test_finished_and_stopped_parameter_servers_are_not_down():
    share = {"processes_up": 1, "processes_expected": 1}
    report, _ = report_of([row("n1", "ps scheduler", "up", "parameter_server", {**share, "processes_done": 0}),
                           row("n1", "ps worker-0", "done", "parameter_server", {**share, "processes_done": 1})])
    assert report.healthy and report.systems["parameter_server"]["summary"]["processes_up"] == 2


def test_an_unreachable_host_is_listed_and_unhealthy():
    from gymfleet.events import Failure

    report, _ = report_of([row("n1", "redis :6390", "up", "redis", {"reachable": 1, "instances": 1, "keys": 2},
                               port=6390, reachable=True, keys={"0": 2})],
                          failures=[Failure("n2", "Gathering Facts", "status", "ssh: no route", unreachable=True)])
    assert report.to_dict()["unreachable"] == ["n2"] and not report.healthy
    assert "Unreachable or failed before reporting: n2" in report.render()
    assert report.systems["redis"]["summary"] == {"components_up": 1, "components": 1, "reachable": 1,
                                                  "instances": 1, "keys": 2}


def test_nothing_deployed_says_so():
    report, _ = report_of([])
    assert not report.healthy
    assert "No component reported a status" in report.render()


@pytest.mark.parametrize("bad", [{"healthy": "yes"}, {"systems": {"ray": {"title": "Ray"}}}])
def test_the_schema_refuses_malformed_documents(bad):
    report, _ = report_of([row("n1", "redis :6390", "up", "redis", port=6390, reachable=True, keys={})])
    document = report.to_dict() | bad
    assert list(validator("status.schema.json").iter_errors(document))


def test_run_result_fits_its_schema():
    from gymfleet.events import RunResult

    state = RunState()
    for line in (DATA / "preflight-unreachable.jsonl").read_text().splitlines():
        state.feed(json.loads(line))
    result = RunResult(playbook=RunRequest("preflight", []).playbook, status="failed", rc=4, check=True, elapsed=2.0,
                       tasks=state.tasks_started, hosts=state.hosts, failures=state.failures)
    validator("run.schema.json").validate(result.to_dict())
    assert result.to_dict()["hosts"]["gone-node"]["status"] == "unreachable"


def test_summaries_add_up_the_rows_shares_and_the_manifest_gives_the_line():
    from gymfleet.status import summary_line

    report, _ = report_of([
        row("n1", "envoy", "up", "openenv", {"backends_healthy": 1, "backends_total": 2, "urls": ["http://a:8000"]}),
        row("n2", "envoy", "DOWN", "openenv", {"backends_healthy": 0, "backends_total": 2, "urls": ["http://b:8000"]}),
        row("n1", "server", "up", "openenv", {"servers_up": 1, "servers": 1}),
        row("n1", "ray head", "up", "ray", {"nodes_alive": None, "nodes_expected": 2, "cpus": None}),
        row("n1", "hello", "up", "hello_http"),
    ])
    openenv = report.systems["openenv"]["summary"]
    assert openenv == {"components_up": 2, "components": 3, "backends_healthy": 1, "backends_total": 4,
                       "urls": ["http://a:8000", "http://b:8000"], "servers_up": 1, "servers": 1}
    assert summary_line("openenv", openenv) == (
        "backends healthy 1/4, servers up 1/1, Envoy http://a:8000 http://b:8000")
    # What a row does not know shows as ?; a system the manifest gives no line counts its rows up.
    assert summary_line("ray", report.systems["ray"]["summary"]).startswith("nodes alive ?/2, CPUs ?, GPUs ?")
    assert summary_line("hello_http", report.systems["hello_http"]["summary"]) == "up 1/1"
