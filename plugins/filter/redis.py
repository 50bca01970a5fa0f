"""Which redis instances other hosts could use without a password."""

from __future__ import annotations


def redis_unprotected_ports(instances: list[dict], protected_mode: bool, bind_cluster_address: bool,
                            bind_any: bool) -> list[int]:
    """Ports of instances without protected mode that listen beyond loopback; per-instance keys win."""
    return [
        instance["port"]
        for instance in instances
        if not instance.get("protected_mode", protected_mode)
        and (bind_any or instance.get("bind_cluster_address", bind_cluster_address))
    ]


class FilterModule:
    def filters(self):
        return {"redis_unprotected_ports": redis_unprotected_ports}
