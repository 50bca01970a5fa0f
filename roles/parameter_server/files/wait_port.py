"""Wait until ADDRESS:PORT accepts TCP connections: a scheduler unit's ExecStartPost, so that starting the
unit succeeds only once the scheduler listens, and fails when it does not within the timeout."""

import argparse
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            with socket.create_connection((args.address, args.port), timeout=1):
                return 0
        except OSError as error:
            if time.monotonic() >= deadline:
                print(f"{args.address}:{args.port} is not listening after {args.timeout:g} s: {error}",
                      file=sys.stderr)
                return 1
        time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
