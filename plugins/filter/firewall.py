"""Turn a set of protected ports and allowed sources into iptables rules for the firewall role."""

from __future__ import annotations

import ipaddress
import json
import re

from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import host_values

# multiport accepts 15 port slots per rule and a range takes two, so 7 entries always fit.
MULTIPORT_ENTRIES = 7


def _span(entry) -> tuple[int, int]:
    ports = entry["ports"]
    if isinstance(ports, (list, tuple)):
        first, last = int(ports[0]), int(ports[-1])
        return min(first, last), max(first, last)
    return int(ports), int(ports)


def _spec(span: tuple[int, int]) -> str:
    first, last = span
    return str(first) if first == last else f"{first}:{last}"


def _source(address: str) -> str:
    network = ipaddress.ip_network(str(address), strict=False)
    if network.version != 4:
        raise ValueError(f"{address} is not an IPv4 address or network")
    return str(network)


# Chains that iptables itself or another program owns: gymfleet replaces every rule of the chain it is given, so
# one of these would lose its owner's rules (Docker's, Tailscale's, Kubernetes', fail2ban's, libvirt's, ufw's).
BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
OWNED_CHAIN = re.compile(r"^(DOCKER|ts-|KUBE-|CNI-|cali-|FLANNEL|WEAVE|f2b-|LIBVIRT_|ufw-|ufw6-|nixos-|IPTABLES-)")
# iptables' limit on a chain name (XT_EXTENSION_MAXNAMELEN - 1).
CHAIN_NAME = re.compile(r"^[^\s!-][^\s!]{0,27}$")


def chain_name_problems(chains: dict) -> list[str]:
    """What is wrong with the chain names gymfleet will own (variable -> name), each with the fix: a built-in chain,
    a chain another program owns, a name iptables refuses, or one name given to two variables."""
    problems = []
    for variable, name in sorted(chains.items()):
        if name in BUILTIN_CHAINS:
            problems.append(f"{variable} is {name}, a built-in chain, whose rules gymfleet would replace; fix: give "
                            "a chain of gymfleet's own, such as GYMFLEET-<PURPOSE>")
        elif OWNED_CHAIN.match(name):
            problems.append(f"{variable} is {name}, a chain that {_owner(name)} owns, whose rules gymfleet would "
                            "replace; fix: give a chain of gymfleet's own, such as GYMFLEET-<PURPOSE>")
        elif not CHAIN_NAME.match(name):
            problems.append(f"{variable} is {name!r}, which iptables refuses as a chain name (1-28 characters, no "
                            "space or '!', not starting with '-'); fix: give a name such as GYMFLEET-<PURPOSE>")
    owners: dict[str, list[str]] = {}
    for variable, name in chains.items():
        owners.setdefault(name, []).append(variable)
    problems += [f"{' and '.join(sorted(variables))} are both {name}, so each would replace the other's rules; fix: "
                 "give each its own chain" for name, variables in sorted(owners.items()) if len(variables) > 1]
    return problems


def _owner(name: str) -> str:
    for prefix, owner in (("DOCKER", "Docker"), ("ts-", "Tailscale"), ("KUBE-", "Kubernetes"), ("CNI-", "a CNI plugin"),
                          ("cali-", "Calico"), ("f2b-", "fail2ban"), ("LIBVIRT_", "libvirt"), ("ufw", "ufw")):
        if name.startswith(prefix):
            return owner
    return "another program"


def _matches(ports: list) -> list[tuple[str, str]]:
    """(proto, iptables match) pairs that cover ports, merged and sorted (hosts answer preflight in any order,
    and the rules must come out the same), at most MULTIPORT_ENTRIES ports each."""
    spans: dict[str, set[tuple[int, int]]] = {}
    for entry in ports:
        spans.setdefault(entry.get("proto", "tcp"), set()).add(_span(entry))
    matches = []
    for proto, found in sorted(spans.items()):
        specs = [_spec(span) for span in sorted(found)]
        for start in range(0, len(specs), MULTIPORT_ENTRIES):
            group = ",".join(specs[start:start + MULTIPORT_ENTRIES])
            matches.append((proto, f"-p {proto} -m multiport --dports {group}"))
    return matches


def _sources(sources: list) -> list[str]:
    allowed = []
    for source in sources:
        if _source(source) not in allowed:
            allowed.append(_source(source))
    return allowed


# Always let through, whoever sends it: replies to this host's own connections, ICMP (ping, path MTU) and a
# DHCP server's answers, which conntrack does not see as replies when they are broadcast.
ALWAYS_LET_THROUGH = ("-m conntrack --ctstate RELATED,ESTABLISHED", "-p icmp", "-p udp --sport 67 --dport 68")


def _refuse(action: str) -> list[str]:
    if action == "REJECT":
        return ["-p tcp -j REJECT --reject-with tcp-reset", "-j REJECT --reject-with icmp-port-unreachable"]
    return [f"-j {action}"]


def _open_to_all(public_ports: list | None, ssh_ports: list | None) -> list[dict]:
    return list(public_ports or []) + [{"ports": int(port)} for port in ssh_ports or []]


def firewall_rules(ports: list, sources: list, action: str = "DROP", interface: str = "",
                   public_ports: list | None = None, refuse_others: bool = False, ssh_ports: list | None = None,
                   trusted_interfaces: list | None = None) -> list[str]:
    """Rules that let sources and loopback reach ports and apply action to everyone else.

    interface: when set, sources are let in only through it (such as tailscale0).
    refuse_others: after the protected ports, every other packet from anyone who is not a source is refused too,
    except on trusted_interfaces (loopback, this host's container bridges), replies, ICMP, DHCP answers, the SSH
    ports and public_ports (open to everyone): no port that upstream software opens on its own answers a stranger.
    Allowed traffic on the other ports goes back to INPUT (RETURN), so the administrator's own rules still apply.

    ports, public_ports: dicts with `ports` (a port or [first, last]) and optional `proto` (tcp, the default, or
    udp). sources: IPv4 addresses or networks. Duplicates in either are merged.
    """
    if action not in ("DROP", "REJECT"):
        raise ValueError(f"action must be DROP or REJECT, not {action!r}")
    allowed = _sources(sources)
    via = f"-i {interface} " if interface else ""
    open_to_all = _open_to_all(public_ports, ssh_ports)
    rules = [f"{match} -j RETURN" for _, match in _matches(public_ports or [])]
    for proto, match in _matches(ports):
        rules.append(f"-i lo {match} -j ACCEPT")
        rules += [f"{via}-s {source} {match} -j ACCEPT" for source in allowed]
        reject = " --reject-with tcp-reset" if action == "REJECT" and proto == "tcp" else ""
        rules.append(f"{match} -j {action}{reject}")
    if refuse_others:
        rules += [f"-i {name} -j RETURN" for name in dict.fromkeys(["lo", *(trusted_interfaces or [])])]
        rules += [f"{match} -j RETURN" for match in ALWAYS_LET_THROUGH]
        rules += [f"{match} -j RETURN" for _, match in _matches(open_to_all)]
        rules += [f"{via}-s {source} -j RETURN" for source in allowed]
        rules += _refuse(action)
    return rules


def tailnet_guard_rules(ports: list, sources: list, public_ports: list | None = None, refuse_others: bool = False,
                        ssh_ports: list | None = None) -> list[str]:
    """Rules for the mangle table's check of packets from the tailnet interface (the jump matches the
    interface): sources go on (RETURN, so the filter table and the administrator's later mangle rules still
    see them), anyone else is dropped on the protected ports, and with refuse_others on every port but the
    public and SSH ones. Tailscale's ts-input, first in the filter table's INPUT, accepts everything from
    tailscale0 before any other filter rule can refuse it; mangle INPUT runs before filter INPUT and Tailscale
    does not touch it. REJECT exists only in the filter table, hence DROP whatever firewall_action says."""
    allowed = _sources(sources)
    rules = [f"{match} -j RETURN" for _, match in _matches(public_ports or [])]
    for _, match in _matches(ports):
        rules += [f"-s {source} {match} -j RETURN" for source in allowed]
        rules.append(f"{match} -j DROP")
    if refuse_others:
        rules += [f"{match} -j RETURN" for match in ALWAYS_LET_THROUGH]
        rules += [f"{match} -j RETURN" for _, match in _matches(_open_to_all(public_ports, ssh_ports))]
        rules += [f"-s {source} -j RETURN" for source in allowed]
        rules.append("-j DROP")
    return rules


def firewall_member_problems(members: list, hostvars, group: str, claims_known: bool = True) -> list[str]:
    """What keeps the firewall from knowing whom to let in, each with its fix: no members, members whose
    cluster_address is unknown, or claimed ports to protect while preflight did not run (claims_known false)."""
    if not members:
        return [f"group {group} (firewall_members_group) is empty; fix: add the cluster hosts to it"]
    addresses = host_values(members, hostvars, "cluster_address")
    missing = [host for host in members if not addresses.get(host)]
    if missing:
        return [f"members without a cluster_address fact: {', '.join(missing)}; fix: run on the whole cluster once "
                "(facts are cached) or set cluster_address_ip for them"]
    if not claims_known:
        return ["firewall_protect_claimed_ports is true but preflight did not run; fix: run gymfleet.cluster.preflight "
                "first"]
    return []


def firewall_sources(members: list, hostvars, host: str, allowed_cidrs: list | None = None) -> list[str]:
    """Who may reach the protected ports: every member's cluster address, the container subnets of the members
    and of this host (docker_bridge routes them between hosts without masquerading, so a ps-lite worker in a
    container dials a scheduler at a host's address: the members' own workloads), and allowed_cidrs."""
    addresses = host_values(members, hostvars, "cluster_address").values()
    subnets = host_values([host, *members], hostvars, "docker_bridge_subnet").values()
    return list(dict.fromkeys([*filter(None, addresses), *filter(None, subnets), *(allowed_cidrs or [])]))


def firewall_port_plan(ports: list, public_ports: list | None = None) -> str:
    """The host's port plan as the JSON text status reads it back from (module_utils/listeners.py): every
    protected and public port entry with its protocol, exposure and, where claimed, component and variable,
    sorted, so that the same plan is the same file whatever order the claims came in."""
    entries = [{**entry, "proto": entry.get("proto", "tcp"), "exposure": exposure}
               for exposure, group in (("members", ports), ("public", public_ports or [])) for entry in group]
    unique = {json.dumps(entry, sort_keys=True): entry for entry in entries}
    return json.dumps([unique[key] for key in sorted(unique)], indent=2, sort_keys=True) + "\n"


def firewall_status_checks(chains: list, boot_unit: str = "", port_plan: str = "") -> list[dict]:
    """The firewall's status checks (module host_status): one iptables_chain probe per chain, named after it, and
    with port_plan (the JSON file of the host's port plan) a listeners check: every socket a gymfleet service
    listens on beyond loopback must be in the plan.

    chains: {chain, table (default filter), jumps, save_path}. boot_unit: the unit that restores the saved rules
    (empty when they are not persisted: then there is no saved copy to compare with). No chains, no check.
    """
    if not chains:
        return []
    ports = ([{"id": "ports", "probes": {"sockets": {"listeners": {"plan": port_plan}}},
               "row": {"judge": "listeners", "system": "firewall", "component": "ports"}}] if port_plan else [])
    probes = {}
    for chain in chains:
        probe = {"chain": chain["chain"], "table": chain.get("table", "filter"),
                 "jumps": list(chain.get("jumps") or [])}
        if boot_unit and chain.get("save_path"):
            probe["save_path"] = chain["save_path"]
        probes[chain["chain"]] = {"iptables_chain": probe}
    return [{"id": "firewall", "probes": probes,
             "row": {"judge": "firewall", "system": "firewall", "component": "firewall",
                     "chains": [chain["chain"] for chain in chains], "boot_unit": boot_unit}}] + ports


class FilterModule:
    def filters(self):
        return {"chain_name_problems": chain_name_problems, "firewall_rules": firewall_rules,
                "firewall_port_plan": firewall_port_plan, "firewall_member_problems": firewall_member_problems,
                "firewall_sources": firewall_sources,
                "tailnet_guard_rules": tailnet_guard_rules, "firewall_status_checks": firewall_status_checks}
