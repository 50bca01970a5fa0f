"""The status report of a run: every host's probe answers judged into rows (module_utils/status_rows.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.gymfleet.cluster.plugins.module_utils.status_rows import report


def status_report(hosts: list, hostvars, answered: list, register: str = "gymfleet_status_probe") -> dict:
    """{rows, unanswered}: the rows of the hosts in `answered`; the others of `hosts` did not answer."""
    results, addresses = {}, {}
    for host in hosts:
        variables = hostvars[host]
        result = variables.get(register)
        if host in answered and isinstance(result, dict) and "checks" in result:
            results[host] = result
        # Only a member's address is decided on the host itself (role cluster_address), so only a member's can
        # have moved off its interfaces; a SLURM node's is its name's, and its probes run elsewhere.
        member = "cluster" in (variables.get("group_names") or [])
        addresses[host] = (variables.get("cluster_address") or "") if member else ""
    try:
        return report(list(hosts), results, addresses)
    except (KeyError, ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"status_report: {exc}") from None


def service_status_checks(component: str, system: str, title: str) -> list[dict]:
    """The status check of a component with no judge of its own (module host_status): its installed units, each
    with its declared health, judged by `services` (module_utils/status_rows.py) as one row titled after it."""
    return [{"id": component, "probes": {"units": {"units": {"component": component, "health": True}}},
             "row": {"judge": "services", "system": system, "component": title, "unit_component": component}}]


class FilterModule:
    def filters(self):
        return {"status_report": status_report, "service_status_checks": service_status_checks}
