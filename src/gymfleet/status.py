"""`gymfleet status`: the rows the roles' status tasks report, summed up per system.

Each row is {host, component, state, detail, system, metrics} (see the roles' tasks/status.yml); the
playbook publishes all of them as the fact gymfleet_status_report, which is read here from the run.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from gymfleet.events import RunResult, RunState


@functools.cache
def system_titles() -> dict[str, str]:
    """Systems in the order they are shown, with their titles: from the collection's meta/systems.yml."""
    from gymfleet.manifest import status_titles
    from gymfleet.runner import collection_root

    return status_titles(collection_root())
# A parameter-server process that ran its part of the job to the end counts as up.
_UP_STATES = {"up", "done"}
# The status playbook's own verdict (a failed host per component down): the CLI and the API judge from the report
# instead, so that a failure in their run is always something else.
STATUS_SKIP_TAGS = ("fail_when_down",)


def _count(rows: list[dict], **match) -> list[dict]:
    return [row for row in rows if all(row.get("metrics", {}).get(k) == v for k, v in match.items())]


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def summarize(system: str, rows: list[dict]) -> dict:
    """The few numbers a person wants first for one system."""
    up = sum(row["state"] in _UP_STATES for row in rows)
    summary: dict = {"components_up": up, "components": len(rows)}
    if system == "omniboxes":
        masters = _count(rows, role="master")
        nodes = _count(rows, role="node")
        master = masters[0]["metrics"] if masters else {}
        summary.update(
            nodes_healthy=_number(master.get("nodes_healthy")),
            nodes_expected=master.get("nodes_expected", len(nodes)),
            capacity=_number(master.get("capacity")),
            available=_number(master.get("available")),
            registry_keys=len(master.get("registry_keys") or []),
            master_url=master.get("url"),
            node_servers_up=sum(row["state"] == "up" for row in nodes),
        )
    elif system == "ray":
        heads = _count(rows, role="head")
        head = heads[0]["metrics"] if heads else {}
        summary.update(
            nodes_alive=_number(head.get("nodes_alive")), nodes_expected=head.get("nodes_expected", len(rows)),
            cpus=_number(head.get("cpus")), gpus=_number(head.get("gpus")),
            dashboard_url=head.get("dashboard_url"), version=head.get("version"),
        )
    elif system == "openenv":
        envoys = _count(rows, role="envoy")
        servers = _count(rows, role="server")
        summary.update(
            backends_healthy=sum(_number(row["metrics"].get("backends_healthy")) or 0 for row in envoys),
            backends_total=sum(_number(row["metrics"].get("backends_total")) or 0 for row in envoys),
            urls=[row["metrics"].get("url") for row in envoys],
            servers_up=sum(row["state"] == "up" for row in servers), servers=len(servers),
        )
    elif system == "parameter_server":
        summary.update(processes_up=up, processes_expected=len(rows),
                       processes_done=sum(row["state"] == "done" for row in rows))
    elif system == "redis":
        summary.update(
            reachable=sum(bool(row.get("metrics", {}).get("reachable")) for row in rows), instances=len(rows),
            keys=sum(sum((row.get("metrics", {}).get("keys") or {}).values()) for row in rows),
        )
    return summary


def _summary_line(system: str, s: dict) -> str:
    def of(a, b):
        return f"{'?' if a is None else a}/{b}"

    if system == "omniboxes":
        return (f"nodes healthy {of(s['nodes_healthy'], s['nodes_expected'])}, capacity {s['capacity']}, "
                f"available {s['available']}, registry keys {s['registry_keys']}, master {s['master_url']}")
    if system == "ray":
        return (f"nodes alive {of(s['nodes_alive'], s['nodes_expected'])}, CPUs {s['cpus']}, GPUs {s['gpus']}, "
                f"Ray {s['version']}, dashboard {s['dashboard_url']}")
    if system == "openenv":
        return (f"backends healthy {s['backends_healthy']}/{s['backends_total']}, servers up "
                f"{s['servers_up']}/{s['servers']}, {' '.join(u for u in s['urls'] if u) or 'no Envoy'}")
    if system == "parameter_server":
        return (f"processes up {s['processes_up']}/{s['processes_expected']}"
                f" ({s['processes_done']} finished their job)")
    if system == "redis":
        return f"reachable {s['reachable']}/{s['instances']}, keys {s['keys']}"
    return f"up {s['components_up']}/{s['components']}"


@dataclass
class StatusReport:
    """Health of every system in the inventory. `healthy` is False when any component is down."""

    run: RunResult
    rows: list[dict] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)

    @property
    def systems(self) -> dict[str, dict]:
        present = {row.get("system", "other") for row in self.rows}
        titles = system_titles()
        ordered = [s for s in titles if s in present] + sorted(present - set(titles))
        return {system: {"title": titles.get(system, system),
                         "summary": summarize(system, [r for r in self.rows if r.get("system", "other") == system]),
                         "rows": [r for r in self.rows if r.get("system", "other") == system]}
                for system in ordered}

    @property
    def down(self) -> list[dict]:
        return [row for row in self.rows if row["state"] not in _UP_STATES | {"stopped", "not started"}]

    @property
    def healthy(self) -> bool:
        unreachable = [f for f in self.run.failures if f.unreachable]
        return bool(self.rows) and not self.down and not unreachable and not self.unanswered

    def to_dict(self) -> dict:
        return {
            "healthy": self.healthy,
            "systems": {name: {"title": value["title"], "summary": value["summary"],
                               "components": [{k: row.get(k) for k in ("host", "component", "state", "detail")}
                                              | {"metrics": row.get("metrics", {})} for row in value["rows"]]}
                        for name, value in self.systems.items()},
            "unreachable": sorted({f.host for f in self.run.failures if f.unreachable} | set(self.unanswered)),
            "run": self.run.to_dict(),
        }

    def render(self) -> str:
        """One table per system, with its summary line first."""
        blocks = []
        for system, value in self.systems.items():
            table = [["HOST", "COMPONENT", "STATE", "DETAIL"]] + [
                [str(row.get(key, "")) for key in ("host", "component", "state", "detail")] for row in value["rows"]]
            widths = [max(len(line[column]) for line in table) for column in range(3)]
            lines = [f"{value['title']}: {_summary_line(system, value['summary'])}"]
            lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
                      + "  " + line[3] for line in table]
            blocks.append("\n".join(lines))
        unreachable = sorted({f.host for f in self.run.failures if f.unreachable} | set(self.unanswered))
        if unreachable:
            blocks.append(f"Unreachable or failed before reporting: {', '.join(unreachable)}")
        if not blocks:
            blocks.append("No component reported a status (is anything deployed? does the inventory name groups?)")
        verdict = "healthy" if self.healthy else "NOT healthy: " + (
            ", ".join(f"{r['host']} {r['component']}" for r in self.down) or "see above")
        return "\n\n".join(blocks) + f"\n\n{verdict}"


def report_from_run(result: RunResult, state: RunState) -> StatusReport:
    """The status rows published by the status playbook (one run_once fact), else what each host set."""
    for facts in state.facts.values():
        report = facts.get("gymfleet_status_report")
        if isinstance(report, dict):
            return StatusReport(run=result, rows=list(report.get("rows") or []),
                                unanswered=list(report.get("unanswered") or []))
    rows = [row for facts in state.facts.values() for row in facts.get("gymfleet_status_rows") or []]
    return StatusReport(run=result, rows=rows)
