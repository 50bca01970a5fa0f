"""Per-host Docker bridge subnets (the GeoMX guide's 172.17.<n>.0/24 per host): their checks, and the
routes and SNAT rules that connect them, computed from every host's bridge and cluster address."""

from __future__ import annotations

import ipaddress


def docker_bridge_subnet(bip: str) -> str:
    """The network of a bridge address: 172.17.34.1/24 -> 172.17.34.0/24 (empty when it is not one)."""
    try:
        return str(ipaddress.ip_interface(bip).network)
    except ValueError:
        return ""


def docker_bridge_problems(bips: dict, supernet: str, cluster_addresses: dict) -> list[str]:
    """host -> bip: one line per problem naming the host, the variable and the fix."""
    problems = []
    try:
        outer = ipaddress.ip_network(supernet)
    except ValueError as error:
        return [f"docker_bridge_supernet {supernet} is not a network ({error}); fix: give one such as 172.17.0.0/16"]
    networks = {}
    for host, bip in sorted(bips.items()):
        try:
            interface = ipaddress.ip_interface(bip)
        except ValueError:
            problems.append(f"host {host}: docker_bridge_bip {bip} is not an address with a prefix; fix: set it like "
                            "172.17.34.1/24, or fix docker_bridge_bip_pattern / docker_bridge_index")
            continue
        if "/" not in str(bip):
            problems.append(f"host {host}: docker_bridge_bip {bip} has no prefix, so Docker could not size the "
                            f"bridge's subnet; fix: write it with one, such as {bip}/24")
            continue
        if interface.ip in (interface.network.network_address, interface.network.broadcast_address):
            problems.append(f"host {host}: docker_bridge_bip {bip} must be a host address with its prefix (Docker "
                            f"gives it to docker0); fix: use {interface.network.network_address + 1}/"
                            f"{interface.network.prefixlen}")
            continue
        if not interface.network.subnet_of(outer):
            problems.append(f"host {host}: docker_bridge_bip {bip} is outside docker_bridge_supernet {supernet}, so "
                            "its containers' traffic to other hosts would be masqueraded; fix: choose a subnet "
                            "inside it or widen the supernet")
        address = cluster_addresses.get(host)
        if address and ipaddress.ip_address(address) in outer:
            problems.append(f"host {host}: its cluster address {address} lies in docker_bridge_supernet {supernet}, "
                            "so routes to the bridges would capture the hosts' own traffic; fix: choose another "
                            "supernet")
        networks[host] = interface.network
    hosts = sorted(networks)
    for i, host in enumerate(hosts):
        for other in hosts[i + 1:]:
            if networks[host].overlaps(networks[other]):
                problems.append(f"hosts {host} and {other}: bridge subnets {networks[host]} and {networks[other]} "
                                "overlap, so neither could route to the other's containers; fix: give each host its "
                                "own docker_bridge_bip (or docker_bridge_index)")
    return problems


def bridge_routes(subnets: dict, addresses: dict, host: str) -> list[dict]:
    """The routes host needs: every other host's bridge subnet via that host's cluster address."""
    return [{"dest": subnets[other], "via": addresses[other]}
            for other in sorted(subnets) if other != host and subnets[other]]


def route_batch(routes: list, protocol: int) -> str:
    """The boot unit's `ip -batch` input; replace, so a second start with the routes in place succeeds."""
    return "".join(f"route replace {route['dest']} via {route['via']} proto {protocol}\n" for route in routes)


def snat_rules(sources: list, supernet: str) -> list[str]:
    """nat-table rules: traffic from a local bridge to another bridge keeps its source address (ACCEPT ends
    the nat chain before Docker's own MASQUERADE rules); traffic leaving the supernet is masqueraded."""
    return ([f"-s {source} -d {supernet} -j ACCEPT" for source in sources]
            + [f"-s {source} ! -d {supernet} -j MASQUERADE" for source in sources])


def snat_source_problems(sources: list, supernet: str) -> list[str]:
    """What is wrong with the subnets to masquerade, each with the variable and the fix."""
    try:
        outer = ipaddress.ip_network(supernet)
    except ValueError as error:
        return [f"snat_supernet {supernet} is not a network ({error}); fix: give one such as 172.17.0.0/16"]
    problems = []
    for source in sources:
        try:
            network = ipaddress.ip_network(source, strict=False)
        except ValueError as error:
            problems.append(f"snat_sources entry {source} is not a network ({error}); fix: give one such as "
                            "172.17.34.0/24")
            continue
        if not network.subnet_of(outer):
            problems.append(f"subnet {source} is outside snat_supernet {supernet}, so its traffic to the other "
                            "hosts' containers would be masqueraded; fix: widen snat_supernet (keep it equal to "
                            "docker_bridge_supernet) or change the subnet")
    return problems


def forward_rules(sources: list, supernet: str) -> list[str]:
    """filter-table rules letting container traffic cross hosts, whatever FORWARD's policy (Docker sets DROP)."""
    return ([f"-s {supernet} -d {source} -j ACCEPT" for source in sources]
            + [f"-s {source} -j ACCEPT" for source in sources])


class FilterModule:
    def filters(self):
        return {"docker_bridge_subnet": docker_bridge_subnet, "docker_bridge_problems": docker_bridge_problems,
                "bridge_routes": bridge_routes,
                "route_batch": route_batch, "snat_rules": snat_rules,
                "snat_source_problems": snat_source_problems, "forward_rules": forward_rules}
