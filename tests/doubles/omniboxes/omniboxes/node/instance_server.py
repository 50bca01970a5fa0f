"""TEST DOUBLE of omniboxes.node.instance_server: one browser instance on one port, with no browser."""

from __future__ import annotations

import argparse
import threading
import uuid

import redis

from omniboxes.http import JsonError, serve

WATCHDOG_SECONDS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description="OmniBox instance (test double)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="../run")
    parser.add_argument("--instance", default="playwright")
    parser.add_argument("--redis_port", type=int, default=6379)
    parser.add_argument("--redis_host", default="localhost")
    args = parser.parse_args()

    pool = redis.Redis(host=args.redis_host, port=args.redis_port, db=0, decode_responses=True)
    port = str(args.port)
    state = {"lease": None, "lock": threading.Lock()}

    def watchdog() -> None:
        # Upstream re-registers the port when Redis lost it (a Redis restart empties both sets).
        while not stopping.wait(WATCHDOG_SECONDS):
            try:
                leased = any(m.endswith(f":{port}") for m in pool.smembers("in_use"))
                if not pool.sismember("available", port) and not leased:
                    with state["lock"]:
                        state["lease"] = None
                    pool.sadd("available", port)
            except redis.RedisError:
                continue

    def get(_query):
        with state["lock"]:
            if state["lease"]:
                raise JsonError(400, "Instance is already in lease")
            state["lease"] = uuid.uuid4().hex
            pool.srem("available", port)
            return {"instance_id": state["lease"]}

    def reset(query):
        with state["lock"]:
            if query.get("instance_id") != state["lease"]:
                raise JsonError(400, f"Invalid instance UUID: {query.get('instance_id')}")
            state["lease"] = None
            pool.sadd("available", port)
            return {"status": "success"}

    def info(_query):
        return {"in_lease": state["lease"] is not None, "ready": True}

    stopping = threading.Event()
    pool.sadd("available", port)
    threading.Thread(target=watchdog, daemon=True).start()

    def on_stop():
        stopping.set()
        pool.srem("available", port)

    serve(args.port, {("POST", "/get"): get, ("POST", "/reset"): reset, ("GET", "/info"): info}, on_stop)


if __name__ == "__main__":
    main()
