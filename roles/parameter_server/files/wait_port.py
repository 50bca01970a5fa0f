"""Wait until ADDRESS:PORT accepts TCP connections: a scheduler unit's ExecStartPost, so that starting the
unit succeeds only once the scheduler listens, and fails when it does not within the timeout.

With --container NAME (and PORT alone), the address is that Docker container's on its bridge: its published
port on the host answers as soon as the container exists, before the scheduler listens."""

import argparse
import json
import socket
import subprocess
import sys
import time


def container_address(name: str) -> str:
    """The container's bridge address, or empty while it is not running yet."""
    done = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return ""
    networks = json.loads(done.stdout)[0]["NetworkSettings"]["Networks"]
    return next((network["IPAddress"] for network in networks.values() if network.get("IPAddress")), "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="+", help="ADDRESS PORT, or PORT with --container")
    parser.add_argument("--container", help="a Docker container whose address to wait on")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    if len(args.endpoint) != (1 if args.container else 2):
        parser.error("give ADDRESS PORT, or --container NAME PORT")
    port = int(args.endpoint[-1])
    deadline = time.monotonic() + args.timeout
    while True:
        address = container_address(args.container) if args.container else args.endpoint[0]
        try:
            if not address:
                raise OSError(f"container {args.container} has no address yet")
            with socket.create_connection((address, port), timeout=1):
                return 0
        except OSError as error:
            if time.monotonic() >= deadline:
                where = f"container {args.container} ({address or 'no address'})" if args.container else address
                print(f"{where}:{port} is not listening after {args.timeout:g} s: {error}", file=sys.stderr)
                return 1
        time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
