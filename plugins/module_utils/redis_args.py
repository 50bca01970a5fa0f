"""The argument spec that matches the redis_connection doc fragment, and connecting with it."""

from __future__ import annotations

from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespClient, RespError, parse_info


def connection_argument_spec() -> dict:
    return {
        "host": {"type": "str", "default": "127.0.0.1"},
        "port": {"type": "int", "default": 6379},
        "password": {"type": "str", "no_log": True},
        "username": {"type": "str"},
        "connect_timeout": {"type": "float", "default": 3.0},
    }


# A user name means nothing without its password; a password alone authenticates the default user.
CONNECTION_REQUIRED_BY = {"username": ["password"]}


def connect(params: dict, db: int = 0) -> RespClient:
    return RespClient(
        host=params["host"], port=params["port"], password=params["password"],
        username=params["username"], db=db, timeout=params["connect_timeout"],
    )


def health(params: dict) -> dict:
    """PING and INFO of one instance: {up, version, role, uptime_seconds, connected_clients, keys} or {up, error}."""
    try:
        with connect(params) as client:
            if client.command("PING") != "PONG":
                raise RespError("PING did not answer PONG")
            info = parse_info(client.command("INFO"))
    except RespError as exc:
        return {"up": False, "error": f"{params['host']}:{params['port']}: {exc}"}
    keys = {
        name[2:]: stats.get("keys", 0)
        for name, stats in info.items()
        if name.startswith("db") and isinstance(stats, dict)
    }
    return {
        "up": True,
        "version": str(info.get("redis_version", "")),
        "role": info.get("role", ""),
        "uptime_seconds": info.get("uptime_in_seconds", 0),
        "connected_clients": info.get("connected_clients", 0),
        "keys": keys,
    }
