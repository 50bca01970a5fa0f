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
    assert list(document["systems"]) == ["omniboxes", "ray", "openenv", "parameter_server", "redis", "python_env"]
    systems = document["systems"]
    assert systems["omniboxes"]["summary"]["nodes_healthy"] == systems["omniboxes"]["summary"]["nodes_expected"] == 3
    assert systems["omniboxes"]["summary"]["capacity"] == 6
    assert systems["ray"]["summary"]["nodes_alive"] == 3 and systems["ray"]["summary"]["cpus"] == 3
    assert systems["ray"]["summary"]["dashboard_url"].startswith("http://")
    assert systems["openenv"]["summary"]["backends_healthy"] == systems["openenv"]["summary"]["backends_total"] == 2
    assert systems["parameter_server"]["summary"]["processes_expected"] == 4
    assert systems["redis"]["summary"]["reachable"] == systems["redis"]["summary"]["instances"]
    assert document["healthy"] is True
    text = report.render()
    for title in ("OmniBoxes: nodes healthy 3/3", "Ray: nodes alive 3/3", "OpenEnv / Envoy: backends healthy 2/2",
                  "Parameter servers: processes up 4/4", "Redis: reachable"):
        assert title in text
    assert text.rstrip().endswith("healthy")


def row(host, component, state, system, **metrics):
    return {"host": host, "component": component, "state": state, "detail": "", "system": system, "metrics": metrics}


def report_of(rows, failures=()):
    from gymfleet.events import Failure, RunResult

    run = RunResult(playbook="status", status="failed" if failures else "successful", rc=2 if failures else 0,
                    check=False, elapsed=0.5, tasks=3, hosts={}, failures=list(failures))
    return StatusReport(run=run, rows=rows), Failure


def test_a_down_component_makes_the_report_unhealthy_and_is_named():
    report, _ = report_of([
        row("n1", "ray head", "up", "ray", role="head", alive=True, nodes_alive=1, nodes_expected=2, cpus=2.0, gpus=0,
            dashboard_url="http://10.0.0.1:8265", version="2.60.0"),
        row("n2", "ray worker", "DOWN", "ray", role="worker", alive=False),
    ])
    assert report.systems["ray"]["summary"]["nodes_alive"] == 1
    assert not report.healthy
    assert report.render().rstrip().endswith("NOT healthy: n2 ray worker")
    validator("status.schema.json").validate(report.to_dict())


def test_finished_and_stopped_parameter_servers_are_not_down():
    report, _ = report_of([row("n1", "ps scheduler", "up", "parameter_server", name="scheduler"),
                           row("n1", "ps worker-0", "done", "parameter_server", name="worker-0")])
    assert report.healthy and report.systems["parameter_server"]["summary"]["processes_up"] == 2


def test_an_unreachable_host_is_listed_and_unhealthy():
    from gymfleet.events import Failure

    report, _ = report_of([row("n1", "redis :6390", "up", "redis", port=6390, reachable=True, keys={"0": 2})],
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
