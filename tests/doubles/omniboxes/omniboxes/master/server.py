"""TEST DOUBLE of omniboxes.master.server: discovers nodes from the Redis registry and reports their health."""

from __future__ import annotations

import argparse
import threading

import redis

from omniboxes.http import JsonError, call, serve

REGISTRY_PREFIX = "omnibox:nodes:"
REGISTRY_SECONDS = 10
HEALTH_SECONDS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description="OmniBox master (test double)")
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--redis-host", default="localhost")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--redis-registry", action="store_true")
    parser.add_argument("--nodes", nargs="*", default=[])
    args = parser.parse_args()

    registry = redis.Redis(host=args.redis_host, port=args.redis_port, db=1, decode_responses=True)
    lock = threading.Lock()
    nodes: dict[str, dict] = {}  # url -> status
    static = list(args.nodes)

    def failed(url):
        return {"url": url, "hash": url, "healthy": False, "capacity": 0, "available": 0, "instances": []}

    nodes.update({url: failed(url) for url in static})

    def discover():
        while True:
            found = []
            if args.redis_registry:
                try:
                    for key in registry.scan_iter(f"{REGISTRY_PREFIX}*"):
                        url = registry.get(key)
                        if url and url not in found:
                            found.append(url)
                except redis.RedisError:
                    found = []
            # As upstream: an empty or unreachable registry leaves the node list as it was.
            if found:
                urls = static + [url for url in found if url not in static]
                with lock:
                    for url in list(nodes):
                        if url not in urls:
                            del nodes[url]
                    for url in urls:
                        nodes.setdefault(url, failed(url))
            stop.wait(REGISTRY_SECONDS)

    def check_health():
        while True:
            with lock:
                urls = list(nodes)
            for url in urls:
                try:
                    data = call("GET", f"{url}/info", timeout=5)
                    status = {"url": url, "hash": url, "healthy": True, "capacity": data.get("capacity", 0),
                              "available": data.get("available", 0), "instances": data.get("in_use", [])}
                except JsonError:
                    status = failed(url)
                with lock:
                    if url in nodes:
                        nodes[url] = status
            stop.wait(HEALTH_SECONDS)

    def info(_query):
        with lock:
            return {"nodes": [dict(status) for status in nodes.values()]}

    stop = threading.Event()
    threading.Thread(target=discover, daemon=True).start()
    threading.Thread(target=check_health, daemon=True).start()
    serve(args.port, {("GET", "/info"): info}, stop.set)


if __name__ == "__main__":
    main()
