#!/usr/bin/python3
"""gymfleet's helper for OmniBoxes units: the registrar, and the bounded start of instance servers.

Installed by the gymfleet.cluster.omniboxes role beside resp.py (the collection's RESP client), so it
needs nothing but the system Python.

  register       keep omnibox:nodes:<hostname> in the master's Redis DB 1 while the local node server
                 answers /info, and while it starts (as upstream's launcher does) until it first answers or
                 --start-grace ends; delete it when the node stops answering and when this process stops.
  start-instances  start omniboxes-instance@<port> units that are not active, at most N at a time.
  keep-pool      watch the node's pool Redis; when it has restarted (empty, as it keeps nothing on disk), add
                 back at once the port of every instance server that answers /info ready and holds no lease; and
                 take out of the pool the port of an instance server whose unit is dead.
  wait-port      wait until something accepts connections on a local TCP port (while a given process lives).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resp import RespClient, RespError, parse_info  # noqa: E402

REGISTRY_DB = 1
REGISTRY_PREFIX = "omnibox:nodes:"
# Seconds an instance server has to answer /info (it may be busy driving its browser).
INSTANCE_TIMEOUT = 2.0


def log(message: str) -> None:
    print(message, flush=True)


def info_of(url: str, api_key: str, timeout: float):
    """A node or instance server's /info answer (parsed JSON), None when it does not answer with one."""
    request = urllib.request.Request(f"{url}/info", headers={"x-api-key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Registrar:
    """The heartbeat upstream's launcher runs, bound to the node server's health instead of the launcher's life."""

    def __init__(self, args):
        self.args = args
        self.key = REGISTRY_PREFIX + args.hostname
        self.stopping = threading.Event()
        self.registered = False
        self.answered = False
        self.started = time.monotonic()

    def _redis(self) -> RespClient:
        # No password: upstream's master reads the registry without one, so it sits behind the firewall instead.
        return RespClient(self.args.redis_host, self.args.redis_port, db=REGISTRY_DB,
                          timeout=self.args.check_seconds + 1)

    def _set(self) -> None:
        with self._redis() as client:
            client.command("SET", self.key, self.args.advertise_url, "EX", self.args.ttl)

    def _missing(self) -> bool:
        with self._redis() as client:
            return client.command("EXISTS", self.key) == 0

    def _delete(self) -> None:
        with self._redis() as client:
            client.command("DEL", self.key)

    def _up(self) -> bool:
        """Whether the node counts as up: it answers /info or, until it first has, it has just started (the
        registrar starts right after it). Upstream's launcher registers a node a second after it starts it, and
        upstream's master reads the registry when it starts and asks each node's /info only 10 s later, so a
        master that starts meanwhile finds the node in its first read and judges it once it answers."""
        if info_of(self.args.node_url, self.args.api_key, self.args.check_seconds) is not None:
            self.answered = True
            return True
        return not self.answered and time.monotonic() - self.started < self.args.start_grace

    def run(self) -> int:
        last_refresh = 0.0
        while not self.stopping.is_set():
            healthy = self._up()
            try:
                if healthy:
                    due = time.monotonic() - last_refresh >= self.args.heartbeat_seconds
                    # A flushed registry or a restarted master Redis gets the key back at the next check.
                    if not self.registered or due or self._missing():
                        self._set()
                        if not self.registered:
                            log(f"registered {self.key} = {self.args.advertise_url}")
                        self.registered, last_refresh = True, time.monotonic()
                elif self.registered:
                    self._delete()
                    self.registered = False
                    log(f"node {self.args.node_url} does not answer /info: unregistered {self.key}")
            except RespError as exc:
                log(f"master redis {self.args.redis_host}:{self.args.redis_port}: {exc}; retrying")
            self.stopping.wait(self.args.check_seconds)
        try:
            self._delete()
            log(f"stopping: unregistered {self.key}")
        except RespError as exc:
            log(f"stopping: could not unregister {self.key}: {exc}; it expires within {self.args.ttl} s")
        return 0


def register(args) -> int:
    registrar = Registrar(args)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: registrar.stopping.set())
    return registrar.run()


class PoolKeeper:
    """Upstream's instance servers add their port again only at their next 30 s watchdog turn after the pool's
    Redis lost it; this fills the pool within a poll of Redis coming back, without restarting the servers. A
    leased server is left to upstream's watchdog, which resets its orphaned lease (its in_use entry is gone).
    And a server that died (killed, crashed) leaves its port available, where the node server would lease it to a
    client and fail; this takes the port out while its unit is dead, and the server adds it back when it starts."""

    def __init__(self, args):
        self.args = args
        self.ports = list(range(args.first, args.first + args.count))
        self.stopping = threading.Event()

    def _client(self) -> RespClient:
        return RespClient("127.0.0.1", self.args.redis_port, timeout=self.args.check_seconds + 1)

    def _free_and_ready(self, port: int) -> bool:
        info = info_of(f"http://127.0.0.1:{port}", self.args.api_key, INSTANCE_TIMEOUT)
        return isinstance(info, dict) and info.get("ready") is True and info.get("in_lease") is False

    def refill(self, client: RespClient) -> list[int]:
        """Add the ports that are neither available nor leased in Redis and whose server is free and ready."""
        leased = {member.rsplit(":", 1)[-1] for member in client.command("SMEMBERS", "in_use")}
        available = set(client.command("SMEMBERS", "available"))
        missing = [port for port in self.ports if str(port) not in available | leased]
        with ThreadPoolExecutor(max_workers=max(len(missing), 1)) as asking:
            added = [port for port, free in zip(missing, asking.map(self._free_and_ready, missing), strict=True)
                     if free]
        if added:
            client.command("SADD", "available", *added)
        return added

    def dead_ports(self) -> set[int]:
        """Ports whose instance unit is failed, inactive or waiting to be started again (not one that is starting:
        upstream's server adds its port before it listens)."""
        listed = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager",
                                 "omniboxes-instance@*.service"], capture_output=True, text=True).stdout
        dead = set()
        for line in listed.splitlines():
            fields = line.split()
            if len(fields) >= 4 and (fields[2] in ("failed", "inactive") or fields[3] == "auto-restart"):
                port = fields[0].removeprefix("omniboxes-instance@").removesuffix(".service")
                if port.isdigit() and int(port) in self.ports:
                    dead.add(int(port))
        return dead

    def drop_dead(self, client: RespClient) -> list[int]:
        dead = [port for port in sorted(self.dead_ports()) if client.command("SREM", "available", port)]
        if dead:
            log(f"instance servers {dead} are dead: their ports are out of the pool until they start again")
        return dead

    def run(self) -> int:
        seen_run = None
        while not self.stopping.is_set():
            try:
                with self._client() as client:
                    run_id = parse_info(client.command("INFO", "server"))["run_id"]
                    if run_id != seen_run:
                        empty = not (client.command("SCARD", "available") or client.command("SCARD", "in_use"))
                        # A Redis that restarted since the last poll, or the first one seen when it holds no pool
                        # at all (both started at boot, or this process restarted with it).
                        if seen_run is not None or empty:
                            added = self.refill(client)
                            log(f"pool Redis {run_id[:8]} is new: added back {added or 'no port'}")
                        seen_run = run_id
                    self.drop_dead(client)
            except (RespError, OSError) as exc:
                if seen_run != "":
                    log(f"pool Redis 127.0.0.1:{self.args.redis_port}: {exc}; waiting for it")
                seen_run = ""  # whatever answers next is a new Redis
            self.stopping.wait(self.args.check_seconds)
        return 0


def keep_pool(args) -> int:
    keeper = PoolKeeper(args)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: keeper.stopping.set())
    return keeper.run()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def listening_sockets(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on a local port (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[1].rsplit(":", 1)[1] == f"{port:04X}" and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def holds(pid: int, inodes: set[str]) -> bool:
    sockets = {f"socket:[{inode}]" for inode in inodes}
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") in sockets for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead and not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_port(args) -> int:
    """Ready once the port answers; with --pid, once that process itself listens there (another program holding
    the port does not count), and failed as soon as that process is gone."""
    deadline = time.monotonic() + args.timeout
    said = False
    while time.monotonic() < deadline:
        if args.pid and not alive(args.pid):
            log(f"the server (pid {args.pid}) exited before it listened on 127.0.0.1:{args.port}")
            return 1
        if port_open(args.port):
            if not args.pid or holds(args.pid, listening_sockets(args.port)):
                return 0
            if not said:
                log(f"127.0.0.1:{args.port} is held by another process than the server (pid {args.pid}); waiting")
                said = True
        time.sleep(0.2)
    log(f"nothing listens on 127.0.0.1:{args.port} after {args.timeout} s")
    return 1


def start_instances(args) -> int:
    units = [f"omniboxes-instance@{port}.service" for port in range(args.first, args.first + args.count)]
    states = subprocess.run(["systemctl", "is-active", *units], capture_output=True, text=True).stdout.split()
    inactive = [unit for unit, state in zip(units, states, strict=True) if state != "active"]
    failed = []
    for start in range(0, len(inactive), args.parallel):
        batch = inactive[start:start + args.parallel]
        # systemctl waits for each unit's ExecStartPost (wait-port), so a batch is done when all answer.
        if subprocess.run(["systemctl", "start", *batch]).returncode != 0:
            failed += [u for u in batch if subprocess.run(["systemctl", "is-active", "--quiet", u]).returncode]
    print(json.dumps({"started": [u for u in inactive if u not in failed], "failed": failed}))
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    reg = commands.add_parser("register", help="run the registrar")
    reg.add_argument("--node-url", required=True, help="where this host reaches its node server")
    reg.add_argument("--advertise-url", required=True, help="the value of the registry key")
    reg.add_argument("--hostname", required=True)
    reg.add_argument("--redis-host", required=True)
    reg.add_argument("--redis-port", type=int, default=6379)
    reg.add_argument("--api-key", default="default_key")
    reg.add_argument("--ttl", type=int, default=120)
    reg.add_argument("--heartbeat-seconds", type=float, default=30)
    reg.add_argument("--check-seconds", type=float, default=2)
    reg.add_argument("--start-grace", type=float, default=60,
                     help="seconds a node that has not answered yet stays registered after this process starts")
    reg.set_defaults(func=register)

    start = commands.add_parser("start-instances", help="start inactive instance units in bounded batches")
    start.add_argument("--first", type=int, required=True)
    start.add_argument("--count", type=int, required=True)
    start.add_argument("--parallel", type=int, default=8)
    start.set_defaults(func=start_instances)

    keep = commands.add_parser("keep-pool", help="add the instance servers' ports back when the pool Redis restarts")
    keep.add_argument("--redis-port", type=int, required=True)
    keep.add_argument("--first", type=int, required=True, help="the first instance server's port")
    keep.add_argument("--count", type=int, required=True)
    keep.add_argument("--api-key", default="default_key")
    keep.add_argument("--check-seconds", type=float, default=0.5)
    keep.set_defaults(func=keep_pool)

    wait = commands.add_parser("wait-port", help="wait until a local TCP port accepts connections")
    wait.add_argument("port", type=int)
    wait.add_argument("--pid", type=int, default=0, help="give up as soon as this process is gone")
    wait.add_argument("--timeout", type=float, default=120)
    wait.set_defaults(func=wait_port)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
