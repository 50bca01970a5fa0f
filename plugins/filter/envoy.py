"""Envoy's bootstrap config for OpenEnv environment servers: one listener, one round-robin cluster of every
backend, active health checks that notice a new or dead backend within seconds, and WebSocket on /ws."""

from __future__ import annotations

import ipaddress

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
CLUSTER = "openenv_cluster"
# The response header that names the backend that served a request (for the distribution check).
UPSTREAM_HEADER = "x-gymfleet-upstream"

DEFAULTS = {
    "listen_address": "0.0.0.0",
    "listen_port": 8000,
    "admin_port": 9901,
    "admin_address": "127.0.0.1",
    "health_path": "/health",
    # Envoy checks a cluster that gets no traffic only every no_traffic_interval (60 s by default): a fresh
    # backend would wait a minute for its first check. Both intervals are short, so it joins within ~2 s.
    "health_interval": "1s",
    "health_timeout": "1s",
    "unhealthy_threshold": 2,
    "healthy_threshold": 1,
    "websocket_prefix": "/ws",
    "request_timeout": "60s",
    "connect_timeout": "1s",
    "consecutive_5xx": 5,
    "ejection_time": "10s",
}


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def envoy_openenv_config(settings: dict) -> dict:
    """The bootstrap document, ready for to_nice_yaml.

    settings: backends (a list of "address:port", required, at least one) and any key of DEFAULTS.
    """
    config = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    backends = config.get("backends") or []
    if not backends:
        raise ValueError("envoy_openenv_config: backends is empty; Envoy needs at least one environment server")
    pairs = [str(backend).rsplit(":", 1) for backend in backends]
    if any(len(pair) != 2 or not pair[0] or not pair[1].isdigit() for pair in pairs):
        raise ValueError(f"envoy_openenv_config: backends must be address:port, not {backends}")
    endpoints = [{"endpoint": {"address": {"socket_address": {"address": address, "port_value": int(port)}}}}
                 for address, port in pairs]
    # STATIC needs IP addresses; host names (such as SLURM nodes) are resolved by STRICT_DNS.
    discovery = "STATIC" if all(_is_ip(address) for address, _ in pairs) else "STRICT_DNS"
    routes = [
        # WebSocket sessions live as long as the client keeps them: no route timeout.
        {"match": {"prefix": config["websocket_prefix"]},
         "route": {"cluster": CLUSTER, "timeout": "0s"}},
        {"match": {"prefix": "/"},
         "route": {"cluster": CLUSTER, "timeout": config["request_timeout"]}},
    ]
    manager = {
        "@type": HCM,
        "stat_prefix": "openenv",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "route_config": {
            "name": "openenv",
            "virtual_hosts": [{
                "name": "openenv",
                "domains": ["*"],
                "routes": routes,
                "response_headers_to_add": [
                    {"header": {"key": UPSTREAM_HEADER, "value": "%UPSTREAM_REMOTE_ADDRESS%"}}],
            }],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    return {
        # Admin on loopback by default: it can change Envoy's state (drain, quit), so no one else may reach it.
        "admin": {"address": {"socket_address": {"address": config["admin_address"],
                                                 "port_value": int(config["admin_port"])}}},
        "static_resources": {
            "listeners": [{
                "name": "openenv",
                "address": {"socket_address": {"address": config["listen_address"],
                                               "port_value": int(config["listen_port"])}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": manager}]}],
            }],
            "clusters": [{
                "name": CLUSTER,
                "type": discovery,
                "connect_timeout": config["connect_timeout"],
                "lb_policy": "ROUND_ROBIN",
                "load_assignment": {"cluster_name": CLUSTER, "endpoints": [{"lb_endpoints": endpoints}]},
                "health_checks": [{
                    "timeout": config["health_timeout"],
                    "interval": config["health_interval"],
                    "no_traffic_interval": config["health_interval"],
                    "unhealthy_threshold": int(config["unhealthy_threshold"]),
                    "healthy_threshold": int(config["healthy_threshold"]),
                    "http_health_check": {"path": config["health_path"]},
                }],
                "outlier_detection": {
                    "consecutive_5xx": int(config["consecutive_5xx"]),
                    "base_ejection_time": config["ejection_time"],
                    # Never eject so many that the rest drown.
                    "max_ejection_percent": 50,
                },
            }],
        },
    }


def envoy_backends(workers: list, hostvars) -> list[str]:
    """address:port of every environment server of the backend hosts: each host's cluster address and its
    openenv_ports (the openenv role's default, [8000], where the inventory sets none)."""
    backends = []
    for host in workers:
        variables = hostvars[host]
        backends += [f"{variables['cluster_address']}:{int(port)}" for port in variables.get("openenv_ports", [8000])]
    return backends


class FilterModule:
    def filters(self):
        return {"envoy_openenv_config": envoy_openenv_config, "envoy_backends": envoy_backends}
