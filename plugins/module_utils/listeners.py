"""Which of gymfleet's services listen where, read from /proc, and which of those sockets no port plan names.

A socket belongs to a service when a process of the service's unit (its cgroup) holds it. Sockets bound to
loopback are left out: they answer nobody but the host itself. A unit marked `X-Gymfleet-Listens=any` runs a
program that picks its ports at run time (ps-lite's vans): its sockets are declared as members-only, which the
firewall's refusal of every other port to non-members makes true.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import socket
import struct

from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import (
    LISTENS_MARK,
    MARK,
    PORTS_MARK,
    marks,
)
from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import read_unit

# /proc/net/tcp's state column: 0A is LISTEN; an unconnected UDP socket is 07 (CLOSE) with no remote port.
TCP_LISTEN, UDP_UNCONNECTED = "0A", "07"


class ListenersUnreadable(OSError):
    """The host does not let the probe see which process holds which socket."""


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hex_address, 16)))
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = struct.unpack("<4I", raw)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))


def parse_net_table(text: str, proto: str) -> list[dict]:
    """Listening (TCP) or bound, unconnected (UDP) sockets of one /proc/net table: proto, address, port, inode."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        wanted = state == TCP_LISTEN if proto == "tcp" else state == UDP_UNCONNECTED and remote.endswith(":0000")
        if not wanted:
            continue
        address, port = local.rsplit(":", 1)
        sockets.append({"proto": proto, "address": _address(address), "port": int(port, 16), "inode": inode})
    return sockets


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def unit_of(cgroup_text: str) -> str:
    """The systemd service a process runs in, from /proc/<pid>/cgroup (the innermost *.service), or ''."""
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        services = [part for part in path.split("/") if part.endswith(".service")]
        if services:
            return services[-1]
    return ""


def gymfleet_units(unit_dir: str) -> dict[str, dict]:
    """Unit name -> {component, any_port, ports} of every unit in unit_dir that gymfleet's services engine wrote:
    ports are the ones its declaration names (the engine writes them into the unit)."""
    owned = {}
    for path in sorted(glob.glob(os.path.join(unit_dir, "*.service"))):
        found = marks(read_unit(path))
        if found.get(MARK):
            owned[os.path.basename(path)] = {
                "component": found[MARK], "any_port": found.get(LISTENS_MARK) == "any",
                "ports": [int(port) for port in found.get(PORTS_MARK, "").split() if port.isdigit()]}
    return owned


def service_listeners(unit_dir: str = "/etc/systemd/system", proc: str = "/proc") -> list[dict]:
    """Every socket a gymfleet unit's process listens on, loopback aside: unit, component, pid, process, proto,
    address, port, any_port (the unit's program picks its ports at run time) and declared (the unit's declaration
    names the port). Read from the host's own network namespace, so a container's sockets are not among them."""
    units = gymfleet_units(unit_dir)
    sockets = {}
    for name, proto in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        for entry in parse_net_table(_read(os.path.join(proc, "net", name)), proto):
            if not ipaddress.ip_address(entry["address"]).is_loopback:
                sockets[entry["inode"]] = entry
    found = []
    for pid_dir in glob.glob(os.path.join(proc, "[0-9]*")):
        unit = unit_of(_read(os.path.join(pid_dir, "cgroup")))
        if unit not in units:
            continue
        try:
            links = [os.readlink(fd) for fd in glob.glob(os.path.join(pid_dir, "fd", "*"))]
        except PermissionError as exc:
            # Reading another user's descriptors takes CAP_SYS_PTRACE, which root has on a host but a container
            # may lack: saying nothing would report a host with listeners as one without.
            raise ListenersUnreadable(f"cannot read the sockets of {unit} ({exc.filename}: permission denied; "
                                      "the probe needs root with CAP_SYS_PTRACE)") from exc
        except OSError:  # the process ended while we looked
            continue
        for link in links:
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            if inode in sockets:
                entry = sockets.pop(inode)
                found.append({"unit": unit, "component": units[unit]["component"],
                              "pid": int(os.path.basename(pid_dir)),
                              "process": _read(os.path.join(pid_dir, "comm")).strip(), "proto": entry["proto"],
                              "address": entry["address"], "port": entry["port"],
                              "any_port": units[unit]["any_port"],
                              "declared": entry["port"] in units[unit]["ports"]})
    return sorted(found, key=lambda e: (e["unit"], e["proto"], e["port"], e["address"]))


def _covers(entry: dict, proto: str, port: int) -> bool:
    ports = entry["ports"]
    first, last = (int(ports[0]), int(ports[-1])) if isinstance(ports, (list, tuple)) else (int(ports), int(ports))
    return entry.get("proto", "tcp") == proto and min(first, last) <= port <= max(first, last)


def undeclared(listeners: list[dict], plan: list[dict]) -> list[dict]:
    """The listeners whose port and protocol no entry of the port plan ({ports, proto}) covers, those whose unit's
    declaration names the port and those of a unit whose ports are picked at run time aside."""
    return [entry for entry in listeners if not entry.get("any_port") and not entry.get("declared")
            and not any(_covers(claim, entry["proto"], entry["port"]) for claim in plan)]
