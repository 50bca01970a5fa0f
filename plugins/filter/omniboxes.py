"""Cross-host checks of an OmniBoxes inventory: one master, and nodes the master can tell apart."""

from __future__ import annotations

from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import shared_value_problems


def omniboxes_topology_problems(nodes: list[dict], groups: dict, master_group: str, worker_group: str) -> list[str]:
    """One sentence per problem, each with its fix.

    nodes: one dict per OmniBoxes host in the play with `host`, `master` and `worker` (its groups),
    `hostname` (its registry key name) and `url` (the node URL the master will use).
    groups: the inventory's groups, so that a run limited to some hosts still knows the master.
    """
    masters = sorted(groups.get(master_group, []))
    workers = sorted(groups.get(worker_group, []))
    problems = []
    if len(masters) > 1:
        problems.append(
            f"inventory: hosts {' and '.join(masters)} are all in {master_group}, but OmniBoxes has exactly one "
            f"master; fix: keep one host in [{master_group}] and list the others in [{worker_group}] only"
        )
    if workers and not masters:
        problems.append(
            f"inventory: hosts {', '.join(workers)} are in {worker_group} but no host is in {master_group}, so no "
            f"master would discover them; fix: put one host in [{master_group}] (in both groups for mode both)"
        )
    # Worker-only hosts register under their hostname; the master in mode both knows its node statically.
    registering = [node for node in nodes if node["worker"] and not node["master"]]
    problems += shared_value_problems(
        {node["host"]: node["hostname"] for node in registering},
        "OmniBoxes registry hostname",
        "the master keeps one key omnibox:nodes:<hostname> per name, so one node would hide the other; "
        "give each machine its own hostname or set omniboxes_registry_hostname",
    )
    problems += shared_value_problems(
        {node["host"]: node["url"] for node in registering},
        "OmniBoxes node URL",
        "the master tells nodes apart by URL; set omniboxes_advertise_ip (or omniboxes_node_port) per host",
    )
    return problems


class FilterModule:
    def filters(self):
        return {"omniboxes_topology_problems": omniboxes_topology_problems}
