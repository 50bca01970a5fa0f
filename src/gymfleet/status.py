"""`gymfleet status`: the rows the roles' status tasks report, summed up per system.

Each row is {host, component, state, detail, system, metrics} (see the roles' tasks/status.yml); the
playbook publishes all of them as the fact gymfleet_status_report, which is read here from the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gymfleet import manifest
from gymfleet.events import RunResult, RunState


def _root():
    from gymfleet.runner import collection_root  # the runner imports this module

    return collection_root()


def system_titles() -> dict[str, str]:
    """Systems in the order they are shown, with their titles: from the collection's meta/systems.yml."""
    return manifest.status_titles(_root())


# The status playbook's own verdict (a failed host per component down): the CLI and the API judge from the report
# instead, so that a failure in their run is always something else.
STATUS_SKIP_TAGS = ("fail_when_down",)


def summarize(rows: list[dict]) -> dict:
    """The few numbers a person wants first for one system, from what its rows' judges give."""
    return manifest.summarize(_root(), rows)


def summary_line(system: str, summary: dict) -> str:
    return manifest.summary_line(_root(), system, summary)


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
                         "summary": summarize([r for r in self.rows if r.get("system", "other") == system]),
                         "rows": [r for r in self.rows if r.get("system", "other") == system]}
                for system in ordered}

    @property
    def down(self) -> list[dict]:
        fine = {*manifest.up_states(_root()), "stopped", "not started"}
        return [row for row in self.rows if row["state"] not in fine]

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
            lines = [f"{value['title']}: {summary_line(system, value['summary'])}"]
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
