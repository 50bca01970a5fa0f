"""The argument spec that matches the redis_connection doc fragment."""

from __future__ import annotations

from ansible_collections.gymfleet.cluster.plugins.module_utils.resp import RespClient


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
