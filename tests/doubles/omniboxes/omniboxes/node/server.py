"""TEST DOUBLE of omniboxes.node.server: the per-machine pool API in front of the instance servers."""

from __future__ import annotations

import argparse

import redis

from omniboxes.http import JsonError, call, serve


def main() -> None:
    parser = argparse.ArgumentParser(description="OmniBox Host (test double)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--lifetime_max", type=int, default=60)
    parser.add_argument("--redis_port", type=int, default=6379)
    parser.add_argument("--redis_host", default="localhost")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    pool = redis.Redis(host=args.redis_host, port=args.redis_port, db=0, decode_responses=True)

    def info(_query):
        available = pool.scard("available")
        in_use = sorted(pool.smembers("in_use"))
        return {"available": available, "capacity": available + len(in_use), "in_use": in_use}

    def get(_query):
        port = pool.spop("available")
        if not port:
            raise JsonError(503, "No instances available")
        try:
            lease = call("POST", f"http://127.0.0.1:{port}/get")
        except JsonError:
            pool.sadd("available", port)
            raise JsonError(500, "Error leasing the instance") from None
        instance_id = f"{lease['instance_id']}:{port}"
        pool.sadd("in_use", instance_id)
        return {"instance_id": instance_id}

    def reset(query):
        instance_id = query.get("instance_id", "")
        if instance_id not in pool.smembers("in_use"):
            raise JsonError(400, "Instance not in use or already released")
        lease, port = instance_id.rsplit(":", 1)
        answer = call("POST", f"http://127.0.0.1:{port}/reset?instance_id={lease}")
        pool.srem("in_use", instance_id)
        return answer

    serve(args.port, {("GET", "/info"): info, ("POST", "/get"): get, ("POST", "/reset"): reset})


if __name__ == "__main__":
    main()
