"""Read a Ray cluster from its dashboard's HTTP API: version, nodes, resources and their use."""

from __future__ import annotations

import json
from urllib.error import HTTPError

from ansible.module_utils.urls import open_url

# The autoscaler's report names resources in camel case; the state API and `ray status` do not.
_USAGE_NAMES = {"objectStoreMemory": "object_store_memory"}


class TokenRefused(Exception):
    """The dashboard answered 401 or 403: the token is missing or wrong."""


def _get(params: dict, token: str | None, path: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = params["dashboard_url"].rstrip("/") + path
    try:
        response = open_url(url, headers=headers, timeout=params["request_timeout"], validate_certs=True)
    except HTTPError as exc:
        if exc.code in (401, 403):
            raise TokenRefused(f"{url}: HTTP {exc.code}, the token is " + ("wrong" if token else "missing")) from exc
        raise
    return json.loads(response.read())


def _user_resources(resources: dict) -> dict:
    """Drop Ray's per-node markers (node:<ip>, node:__internal_head__)."""
    return {name: value for name, value in resources.items() if not name.startswith("node:")}


def summarize(version: dict, nodes_answer: dict, status_answer: dict | None) -> dict:
    """The module's result from the three answers."""
    rows = nodes_answer["data"]["result"]["result"]
    nodes = sorted(
        ({"node_id": row["node_id"], "address": row.get("node_ip", ""), "name": row.get("node_name", ""),
          "state": row.get("state", ""), "alive": row.get("state") == "ALIVE", "head": bool(row.get("is_head_node")),
          "resources": _user_resources(row.get("resources_total") or {})} for row in rows),
        key=lambda node: (not node["alive"], node["address"], node["node_id"]),
    )
    alive = [node for node in nodes if node["alive"]]
    totals: dict = {}
    for node in alive:
        for name, value in node["resources"].items():
            totals[name] = totals.get(name, 0.0) + float(value)
    usage = ((status_answer or {}).get("data", {}).get("clusterStatus") or {}).get("loadMetricsReport", {}).get("usage")
    used = {_USAGE_NAMES.get(name, name): float(pair[0]) for name, pair in (usage or {}).items()
            if not name.startswith("node:")}
    heads = [node["address"] for node in alive if node["head"]]
    return {
        "ray_version": version.get("ray_version", ""),
        "head_address": heads[0] if heads else "",
        "alive": len(alive),
        "dead": len(nodes) - len(alive),
        "nodes": nodes,
        "totals": totals,
        "used": used,
        "available": {name: total - used.get(name, 0.0) for name, total in totals.items()},
    }


def fetch(params: dict, token: str | None) -> dict:
    """params: dashboard_url and request_timeout."""
    version = _get(params, token, "/api/version")
    nodes = _get(params, token, "/api/v0/nodes?detail=1&limit=10000")
    try:
        status = _get(params, token, "/api/cluster_status?format=0")
    except TokenRefused:
        raise
    except Exception:  # usage is extra: the autoscaler's report can lag a fresh head by a few seconds
        status = None
    return summarize(version, nodes, status)
