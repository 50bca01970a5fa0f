"""Read one cluster's backends from Envoy's admin API (GET /clusters?format=json)."""

from __future__ import annotations

import json

# HostHealthStatus flags that take a backend out of rotation (envoy.admin.v3.HostHealthStatus).
FAILURE_FLAGS = ("failed_active_health_check", "failed_outlier_check", "failed_active_degraded_check",
                 "pending_dynamic_removal", "pending_active_hc", "excluded_via_immediate_hc_fail",
                 "active_hc_timeout")


def host_rows(answer: dict, cluster: str) -> list[dict] | None:
    """One row per backend of the cluster, or None when Envoy has no such cluster.

    A backend is healthy only when Envoy's own health status says so: successful requests prove nothing,
    since below 50 % healthy backends Envoy's panic mode sends traffic to unhealthy ones too.
    """
    for status in answer.get("cluster_statuses", []):
        if status.get("name") != cluster:
            continue
        rows = []
        for host in status.get("host_statuses", []):
            socket = host.get("address", {}).get("socket_address", {})
            health = host.get("health_status", {})
            flags = [flag for flag in FAILURE_FLAGS if health.get(flag)]
            eds = health.get("eds_health_status", "HEALTHY")
            stats = {stat["name"]: int(stat.get("value", 0)) for stat in host.get("stats", [])}
            rows.append({
                "address": f"{socket.get('address', '')}:{socket.get('port_value', '')}",
                "healthy": eds == "HEALTHY" and not flags,
                "reasons": flags + ([] if eds == "HEALTHY" else [f"eds_health_status={eds}"]),
                "requests": stats.get("rq_total", 0),
                "errors": stats.get("rq_error", 0),
                "active_requests": stats.get("rq_active", 0),
            })
        return sorted(rows, key=lambda row: row["address"])
    return None


def fetch_hosts(admin_url: str, cluster: str, timeout: float) -> list[dict] | None:
    # Imported here: the status filters import this file's judging functions on the controller, in every
    # worker, and ansible.module_utils.urls (with basic) costs about 0.15 s there.
    from ansible.module_utils.urls import open_url

    response = open_url(f"{admin_url.rstrip('/')}/clusters?format=json", timeout=timeout, validate_certs=True)
    return host_rows(json.loads(response.read()), cluster)


def judge_backends(rows: list[dict], expected: list[str]) -> dict:
    """The summary, with the expected backends that are missing or unhealthy."""
    by_address = {row["address"]: row for row in rows}
    wanted = expected or list(by_address)
    return {
        "backends": rows,
        "healthy": sum(row["healthy"] for row in rows),
        "total": len(rows),
        "missing": [address for address in wanted if address not in by_address],
        "unhealthy": [f"{address} ({', '.join(by_address[address]['reasons'])})" for address in wanted
                      if address in by_address and not by_address[address]["healthy"]],
    }
