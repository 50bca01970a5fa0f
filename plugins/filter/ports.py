"""Port plans: find ports that two services on one host would both bind."""

from __future__ import annotations


def _number(port) -> int | None:
    """A port as a number, whether the inventory wrote it as 6379 or "6379" (every INI [all:vars] value is text);
    None when it is not a whole number."""
    if isinstance(port, bool):
        return None
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.strip().isdigit():
        return int(port.strip())
    return None


def _span(claim: dict) -> tuple[int, int] | None:
    """(first, last) of a claim's port or [first, last] range; None when one of them is not a number."""
    ports = claim["ports"]
    ends = [ports[0], ports[-1]] if isinstance(ports, (list, tuple)) and ports else [ports, ports]
    first, last = (_number(end) for end in ends)
    if first is None or last is None:
        return None
    return (first, last) if first <= last else (last, first)


def _describe(claim: dict) -> str:
    span = _span(claim)
    if span is None:
        return f"{claim['component']} ({claim['variable']} = {claim['ports']!r})"
    first, last = span
    where = str(first) if first == last else f"{first}-{last}"
    return f"{claim['component']} ({claim['variable']} = {where})"


def port_conflicts(claims: list[dict]) -> list[str]:
    """Sentences describing every pair of claims whose port spans overlap on the same protocol."""
    problems = []
    numbered = [claim for claim in claims if _span(claim) is not None]
    for index, first in enumerate(numbered):
        a_lo, a_hi = _span(first)
        for second in numbered[index + 1:]:
            if first.get("proto", "tcp") != second.get("proto", "tcp"):
                continue
            b_lo, b_hi = _span(second)
            if a_lo <= b_hi and b_lo <= a_hi:
                problems.append(f"{_describe(first)} overlaps {_describe(second)}")
    return problems


def invalid_ports(claims: list[dict]) -> list[str]:
    """Sentences for claims whose ports are not numbers or fall outside 1-65535."""
    problems = []
    for claim in claims:
        span = _span(claim)
        if span is None:
            problems.append(f"{_describe(claim)} is not a port number")
        elif not all(1 <= port <= 65535 for port in span):
            problems.append(f"{_describe(claim)} is outside 1-65535")
    return problems


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
