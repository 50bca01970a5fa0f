"""A dist_sync smoke job for an MXNet KVStore cluster: proves that every worker reaches the servers and
that the servers aggregate. Worker k pushes k+1 everywhere; after each synchronous round every worker must
pull the same sum, 1 + 2 + ... + N. Each worker writes what it pulled as JSON after every round and fails on
a wrong value. With --rounds and --pause it runs as long as a training job would (for fault drills).

Run by the parameter_server role as a worker program; the DMLC_* environment comes from its unit.
"""

import argparse
import fcntl
import json
import os
import socket
import struct
import time

import mxnet as mx

KEY = 3
SHAPE = (2, 3)
SIOCGIFADDR = 0x8915


def interface_address(name: str) -> str:
    """The IPv4 address of the interface ps-lite uses (DMLC_INTERFACE): the one the other nodes dialled."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
    return socket.inet_ntoa(answer[20:24])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-slice-idx", type=int, default=0, help="accepted as a training script would")
    parser.add_argument("--result", required=True, help="where to write the JSON result")
    parser.add_argument("--rounds", type=int, default=1, help="synchronous rounds to run")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between rounds")
    args = parser.parse_args()

    kv = mx.kv.create("dist_sync")
    kv.init(KEY, mx.nd.zeros(SHAPE))
    expected = kv.num_workers * (kv.num_workers + 1) / 2
    result = {"rank": kv.rank, "num_workers": kv.num_workers, "data_slice": args.data_slice_idx,
              "expected": expected, "host": os.uname().nodename,
              "address": interface_address(os.environ.get("DMLC_INTERFACE", "eth0"))}
    for done in range(1, args.rounds + 1):
        # With no optimizer on the servers, each round's pull is that round's sum of pushes.
        kv.push(KEY, mx.nd.ones(SHAPE) * (kv.rank + 1))
        pulled = mx.nd.zeros(SHAPE)
        kv.pull(KEY, out=pulled)
        values = sorted({float(v) for v in pulled.asnumpy().flatten()})
        result.update(pulled=values, rounds=done, at=time.time())
        # Written whole, then renamed: a reader never sees half a file.
        with open(args.result + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        os.replace(args.result + ".tmp", args.result)
        if values != [expected]:
            return 1
        time.sleep(args.pause)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
