"""Port plans: find ports that two services on one host would both bind."""

from __future__ import annotations


def _span(claim: dict) -> tuple[int, int]:
    ports = claim["ports"]
    if isinstance(ports, int):
        return ports, ports
    first, last = (int(ports[0]), int(ports[-1]))
    return (first, last) if first <= last else (last, first)


def _describe(claim: dict) -> str:
    first, last = _span(claim)
    where = str(first) if first == last else f"{first}-{last}"
    return f"{claim['component']} ({claim['variable']} = {where})"


def port_conflicts(claims: list[dict]) -> list[str]:
    """Sentences describing every pair of claims whose port spans overlap on the same protocol."""
    problems = []
    for index, first in enumerate(claims):
        a_lo, a_hi = _span(first)
        for second in claims[index + 1:]:
            if first.get("proto", "tcp") != second.get("proto", "tcp"):
                continue
            b_lo, b_hi = _span(second)
            if a_lo <= b_hi and b_lo <= a_hi:
                problems.append(f"{_describe(first)} overlaps {_describe(second)}")
    return problems


def invalid_ports(claims: list[dict]) -> list[str]:
    """Sentences for claims whose ports fall outside 1-65535."""
    return [
        f"{_describe(claim)} is outside 1-65535"
        for claim in claims
        if not all(1 <= port <= 65535 for port in _span(claim))
    ]


def claims_from(items: list, key: str, component: str, variable: str) -> list[dict]:
    """Port claims for a list of dicts, such as redis_instances, naming each item's variable path; with an empty
    key the items are the ports themselves (openenv_ports)."""
    return [
        {"component": component, "variable": f"{variable}[{index}]" + (f".{key}" if key else ""),
         "ports": item[key] if key else item}
        for index, item in enumerate(items)
    ]


class FilterModule:
    def filters(self):
        return {"port_conflicts": port_conflicts, "invalid_ports": invalid_ports, "claims_from": claims_from}
