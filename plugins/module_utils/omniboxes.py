"""OmniBoxes' Redis layout, shared by the omniboxes_* modules.

Upstream (microsoft/webgym, omniboxes/common/redis_registry.py and omniboxes/node/*):
- registry, on the master's Redis, DB 1: `omnibox:nodes:<hostname>` = `http://<ip>:<node_port>`, SETEX 120 s;
- pool, on each node's own Redis, DB 0: set `available` of instance ports, set `in_use` of
  `<instance_id>:<port>` leases.
"""

from __future__ import annotations

import json

REGISTRY_DB = 1
REGISTRY_PREFIX = "omnibox:nodes:"
POOL_DB = 0
POOL_KEYS = ("available", "in_use")


def registry_nodes(client) -> list[dict]:
    """Every registered node with its URL and remaining TTL (-1: no expiry), sorted by hostname."""
    nodes = []
    for key in client.scan_iter(f"{REGISTRY_PREFIX}*"):
        url = client.command("GET", key)
        if url is None:  # expired between SCAN and GET
            continue
        nodes.append({"hostname": key[len(REGISTRY_PREFIX):], "url": url, "ttl": client.command("TTL", key)})
    return sorted(nodes, key=lambda node: node["hostname"])


def lease_port(lease: str) -> int | None:
    """The instance port of an `in_use` member (`<instance_id>:<port>`)."""
    _, _, port = lease.rpartition(":")
    return int(port) if port.isdigit() else None


def pool_state(client, expected_ports: list[int] | None = None) -> dict:
    """The pool as it is in Redis, summarized."""
    available = [int(p) for p in client.command("SMEMBERS", "available") if str(p).isdigit()]
    return summarize_pool(available, client.command("SMEMBERS", "in_use"), expected_ports)


def summarize_pool(available: list[int], in_use: list[str], expected_ports: list[int] | None = None) -> dict:
    """The pool's sets, and how they differ from the instance ports that should exist."""
    available = sorted(available)
    in_use = sorted(in_use)
    leased = [lease_port(lease) for lease in in_use]
    state = {
        "available": available,
        "in_use": in_use,
        "capacity": len(available) + len(in_use),
        # A port both free and leased would be handed out twice.
        "conflicts": sorted(set(available) & {p for p in leased if p is not None}),
    }
    if expected_ports is not None:
        known = set(available) | {p for p in leased if p is not None}
        state["missing"] = sorted(set(expected_ports) - known)
        state["unexpected"] = sorted(known - set(expected_ports))
    return state


def summarize_info(answer: dict) -> dict:
    """What a playbook needs from a master's or a node's /info answer."""
    if "nodes" in answer:
        nodes = answer["nodes"] or []
        healthy = [node for node in nodes if node.get("healthy")]
        return {
            "kind": "master",
            "nodes": nodes,
            "total": len(nodes),
            "healthy": len(healthy),
            "unhealthy_urls": sorted(node.get("url", "?") for node in nodes if not node.get("healthy")),
            "capacity": sum(int(node.get("capacity", 0)) for node in healthy),
            "available": sum(int(node.get("available", 0)) for node in healthy),
        }
    return {
        "kind": "node",
        "capacity": int(answer.get("capacity", 0)),
        "available": int(answer.get("available", 0)),
        "in_use": list(answer.get("in_use", [])),
    }


def fetch_info(url: str, api_key: str, timeout: float) -> dict:
    """GET <url>/info of a master or a node server, with upstream's API-key header."""
    # Imported here: the status filters import this file's judging functions on the controller, in every
    # worker, and ansible.module_utils.urls (with basic) costs about 0.15 s there.
    from ansible.module_utils.urls import open_url

    response = open_url(f"{url.rstrip('/')}/info", headers={"x-api-key": api_key}, timeout=timeout, validate_certs=True)
    return json.loads(response.read())
