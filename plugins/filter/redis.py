"""Redis instances as service declarations, and which of them other hosts could use without a password."""

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


def redis_services(instances: list[dict], config_dir: str, enabled: bool = True) -> list[dict]:
    """One service declaration per instance: redis-server in the foreground, ready when it tells systemd so.

    The configuration and secrets files are the service's files, so a change to either restarts exactly that
    instance, and they go with it when the instance leaves the inventory.
    """
    services = []
    for instance in instances:
        port = int(instance["port"])
        config = f"{config_dir}/redis-{port}.conf"
        services.append({
            "name": f"redis-server@{port}",
            "description": f"Redis instance on port {port}",
            "argv": ["/usr/bin/redis-server", config],
            "type": "notify",
            "user": "redis",
            "files": [config, f"{config_dir}/redis-{port}.secrets.conf"],
            "ports": [port],
            "health": {"tcp": f"127.0.0.1:{port}"},
            "restart": "always",
            "enabled": enabled,
            # The pidfile of the configuration lives here; UMask keeps the data files from other users.
            "service_options": {"RuntimeDirectory": f"redis-{port}", "RuntimeDirectoryMode": "2755",
                                "UMask": "007", "LimitNOFILE": 65535},
        })
    return services


def redis_status_checks(instances: list[dict], password: str = "") -> list[dict]:
    """The status checks of the instances (module host_status): PING and INFO on loopback."""
    checks = []
    for instance in instances:
        port = int(instance["port"])
        checks.append({"id": f"redis-{port}", "secret": password or None,
                       "row": {"judge": "redis", "system": "redis", "component": f"redis :{port}", "port": port},
                       "probes": {"info": {"redis": {"port": port, "secret": True}}}})
    return checks


def redis_layout(instances: list[dict], config_dir: str, data_root: str) -> dict:
    """What the instances need on disk, for host_files: each one's data directory, configuration and secrets
    (rendered from the role's templates with the instance as `item`)."""
    layout: dict = {"directories": [], "files": []}
    for instance in instances:
        port = int(instance["port"])
        owned = {"owner": "redis", "group": "redis"}
        layout["directories"].append({"path": f"{data_root}/{port}", **owned, "mode": "0750"})
        layout["files"] += [
            {"dest": f"{config_dir}/redis-{port}.secrets.conf", "template": "redis-secrets.conf.j2",
             "vars": {"item": instance}, **owned, "mode": "0640", "secret": True},
            {"dest": f"{config_dir}/redis-{port}.conf", "template": "redis.conf.j2", "vars": {"item": instance},
             **owned, "mode": "0640"},
        ]
    return layout


class FilterModule:
    def filters(self):
        return {"redis_unprotected_ports": redis_unprotected_ports, "redis_services": redis_services,
                "redis_status_checks": redis_status_checks, "redis_layout": redis_layout}
