"""Cross-host inventory checks for the preflight role."""

from __future__ import annotations


def group_size_problems(rules: list[dict], groups: dict) -> list[str]:
    """One sentence per rule ({group, min, max, exactly}) that the inventory's groups break."""
    problems = []
    for rule in rules:
        size = len(groups.get(rule["group"], []))
        low = rule.get("exactly", rule.get("min", 0)) or 0
        high = rule.get("exactly", rule.get("max"))
        if size >= low and (high is None or size <= high):
            continue
        if "exactly" in rule:
            wanted = f"exactly {low}"
        elif high is None:
            wanted = f"at least {low}"
        else:
            wanted = f"{low} to {high}"
        problems.append(
            f"inventory: group {rule['group']} has {size} hosts but needs {wanted}; "
            f"fix: change the hosts in [{rule['group']}]"
        )
    return problems


def shared_value_problems(values_by_host: dict, what: str, fix: str) -> list[str]:
    """One sentence per value that more than one host has (empty values are ignored)."""
    owners: dict = {}
    for host, value in values_by_host.items():
        if value not in (None, ""):
            owners.setdefault(value, []).append(host)
    return [
        f"hosts {' and '.join(sorted(hosts))} share the {what} {value}; fix: {fix}"
        for value, hosts in owners.items()
        if len(hosts) > 1
    ]


def host_values(hosts: list[str], hostvars, name: str) -> dict:
    """host -> the host's variable `name`, for the hosts that define it (in the order given)."""
    values = {}
    for host in hosts:
        found = hostvars.get(host, {})
        if hasattr(found, "get") and found.get(name) is not None:
            values[host] = found.get(name)
    return values


def address_interface(facts: dict, address: str) -> str:
    """The interface whose first IPv4 address is `address`, from setup's (or host_facts') network facts, or ''."""
    for name in facts.get("interfaces") or []:
        interface = facts.get(name.replace("-", "_")) or {}
        if (interface.get("ipv4") or {}).get("address") == address and address:
            return interface.get("device", name)
    return ""


def cluster_problems(hosts: list[str], hostvars, rules: list[dict], groups: dict) -> list[str]:
    """The checks across the cluster's hosts: two hosts with one hostname (registries key nodes by it) or one
    cluster address, and the inventory's group size rules ({group, min, max, exactly}).

    hostvars: Ansible's, read for each host's gathered hostname and decided cluster_address."""
    def value(host, *path):
        found = hostvars[host]
        for key in path:
            found = found.get(key) if hasattr(found, "get") else None
        return found or ""

    return (shared_value_problems({host: value(host, "ansible_facts", "hostname") for host in hosts}, "hostname",
                                  "registries key nodes by hostname, so one would hide the other; give each machine "
                                  "its own hostname (hostnamectl set-hostname) or remove the duplicate inventory entry")
            + shared_value_problems({host: value(host, "cluster_address") for host in hosts}, "cluster address",
                                    "set cluster_address_ip on each to its own address")
            + group_size_problems(rules, groups))


def path_kind_problems(paths_by_variable: dict, kinds: dict) -> list[str]:
    """One sentence per variable whose path is something other than a directory or nothing (a venv path that is a
    file, say); kinds is host_facts' path_kinds for those paths. Empty paths are ignored."""
    return [
        f"{variable} is {path}, which is a {kinds[path] if kinds[path] == 'file' else 'special file'} on this host, "
        f"not a directory; fix: point {variable} at a directory (or a path that does not exist yet), or move the "
        "file away"
        for variable, path in sorted(paths_by_variable.items())
        if path and kinds.get(path) in ("file", "other")
    ]


def components_for(components: list[dict], group_names: list[str]) -> list[dict]:
    """The components whose groups include any of the host's groups."""
    return [c for c in components if set(c.get("groups", [])) & set(group_names)]


class FilterModule:
    def filters(self):
        return {
            "path_kind_problems": path_kind_problems,
            "group_size_problems": group_size_problems,
            "shared_value_problems": shared_value_problems,
            "cluster_problems": cluster_problems,
            "host_values": host_values,
            "address_interface": address_interface,
            "components_for": components_for,
        }
