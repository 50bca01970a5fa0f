"""Lab hosts: containers running systemd on a private Docker network with fixed addresses.

Every object the lab creates carries the label `gymfleet.lab=<name>`, and `down` removes only
objects with that label, so nothing else on the engine is touched.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.cache import mount_options
from gymfleet.lab.run import run

LABEL = "gymfleet.lab"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
MAX_NODES = 64
# Lab networks are carved from this range, one /24 per lab, skipping any subnet already routed here.
SUBNET_POOL = ipaddress.ip_network("172.30.0.0/16")
HOST_OFFSET = 10
BOOT_TIMEOUT = 120
NETWORK_ATTEMPTS = 5
# systemd as PID 1 holds inotify instances of its own (about 6 per lab host, measured here: 128, the kernel's
# default per user, runs out at about 22 hosts), all counted against root.
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 8
INOTIFY_HEADROOM = 128
CONNECTIONS = ("docker", "ssh", "paramiko")

# The container options that run systemd as PID 1 on this machine kind: no --privileged (it fails
# here for want of CAP_SYS_RESOURCE), only what systemd and the network roles need, and SYS_PTRACE, which root has
# on a host and status needs to see which service holds which socket.
SYSTEMD_RUN_OPTIONS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "SYS_PTRACE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
]


@dataclass
class LabNode:
    name: str
    ip: str
    state: str
    systemd: str = "-"


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise GymfleetError(
            f"lab name {name!r} is not valid; fix: use 1-24 lowercase letters, digits, '-' or '_', starting with "
            "a letter"
        )


def validate_nodes(nodes: int) -> None:
    if not 1 <= nodes <= MAX_NODES:
        raise GymfleetError(f"--nodes {nodes} is out of range; fix: give a number from 1 to {MAX_NODES}")


def network_name(lab: str) -> str:
    return f"gymfleet-{lab}"


def _lab_containers(lab: str) -> list[str]:
    out = run(["docker", "ps", "-a", "--filter", f"label={LABEL}={lab}", "--format", "{{.Names}}"]).stdout
    return sorted(out.split())


def _used_subnets() -> list[ipaddress.IPv4Network]:
    used = []
    nets = run(["docker", "network", "ls", "-q"]).stdout.split()
    if nets:
        info = json.loads(run(["docker", "network", "inspect", *nets]).stdout)
        for net in info:
            for cfg in (net.get("IPAM") or {}).get("Config") or []:
                if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                    used.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    for line in run(["ip", "-4", "route", "show"]).stdout.splitlines():
        dest = line.split()[0] if line.strip() else "default"
        if dest != "default":
            used.append(ipaddress.ip_network(dest, strict=False))
    return used


def _free_subnet() -> ipaddress.IPv4Network:
    used = _used_subnets()
    for candidate in SUBNET_POOL.subnets(new_prefix=24):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise GymfleetError(f"no free /24 left in {SUBNET_POOL}; fix: remove unused labs with `gymfleet lab down`")


def _systemd_state(container: str) -> str:
    proc = run(["docker", "exec", container, "systemctl", "is-system-running"], check=False, timeout=30)
    return proc.stdout.strip() or "unknown"


def _wait_booted(containers: list[str]) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    pending = list(containers)
    while pending and time.monotonic() < deadline:
        pending = [c for c in pending if _systemd_state(c) not in ("running", "degraded")]
        if pending:
            time.sleep(1)
    if pending:
        states = ", ".join(f"{c}: {_systemd_state(c)}" for c in pending)
        raise GymfleetError(f"systemd did not finish booting within {BOOT_TIMEOUT} s ({states})")


def _ssh_keypair(key_dir: Path, lab: str) -> Path:
    # Outside the inventory folder: Ansible would try to parse the key files as inventory sources.
    key = key_dir / "id_ed25519"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.parent.chmod(0o700)
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"gymfleet-lab-{lab}", "-f", str(key)])
    return key


def _redis_password(key_dir: Path) -> Path:
    """A random password for the lab's Redis, kept beside the SSH key and out of the inventory."""
    path = key_dir / "redis_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path


def render_inventory(lab: str, connection: str, nodes: list[tuple[str, str]], key: Path) -> str:
    """The lab inventory in YAML; `gymfleet_lab_connection` picks how Ansible reaches the hosts."""
    lines = [
        "---",
        f"# Written by `gymfleet lab up --name {lab}`; `gymfleet lab down --name {lab}` removes it.",
        "# Reach the hosts another way with -e gymfleet_lab_connection=docker|ssh|paramiko.",
        "all:",
        "  vars:",
        f"    gymfleet_lab_name: {lab}",
        f"    gymfleet_lab_connection: {connection}",
        "    ansible_connection: >-",
        "      {{ {'docker': 'community.docker.docker', 'ssh': 'ansible.builtin.ssh',",
        "          'paramiko': 'ansible.builtin.paramiko_ssh'}[gymfleet_lab_connection] }}",
        "    ansible_host: >-",
        "      {{ gymfleet_lab_container if gymfleet_lab_connection == 'docker' else gymfleet_lab_ip }}",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {key}",
        "    ansible_python_interpreter: /usr/bin/python3",
        f"    redis_password: \"{{{{ lookup('ansible.builtin.file', '{key.parent / 'redis_password'}') }}}}\"",
        "  children:",
        "    cluster:",
        "      hosts:",
    ]
    for container, ip in nodes:
        lines.append(f"        {container}: {{gymfleet_lab_container: {container}, gymfleet_lab_ip: {ip}}}")
    lines += [
        "    redis:",
        "      children:",
        "        cluster:",
        "    python_env:",
        "      children:",
        "        cluster:",
    ]
    return "\n".join(lines) + "\n"


def resume(lab: str, inventory_root: Path, log) -> Path | None:
    """Start an existing lab's stopped hosts; None when there is no such lab."""
    existing = _lab_containers(lab)
    if not existing:
        return None
    lab_dir = inventory_root / lab
    if not (lab_dir / "hosts.yml").is_file():
        raise GymfleetError(
            f"lab {lab!r} has containers but no inventory at {lab_dir}; "
            f"fix: `gymfleet lab down --name {lab}`, then up"
        )
    log(f"lab {lab} exists; making sure its {len(existing)} hosts run")
    run(["docker", "start", *existing], timeout=120)
    _wait_booted(existing)
    return lab_dir


def ensure_inotify_instances(hosts: int, log, limit_file: Path = INOTIFY_LIMIT) -> None:
    """Raise the per-user inotify instance limit to what `hosts` systemd lab hosts need (every lab's running hosts
    counted), as root can; otherwise refuse before anything is created, with the command that fixes it."""
    needed = hosts * INOTIFY_PER_HOST + INOTIFY_HEADROOM
    try:
        current = int(limit_file.read_text())
    except (OSError, ValueError):
        return  # not Linux's procfs: nothing to check
    if current >= needed:
        return
    try:
        limit_file.write_text(f"{needed}\n")
    except OSError:
        raise GymfleetError(
            f"fs.inotify.max_user_instances is {current}, and {hosts} lab hosts running systemd need about {needed} "
            f"(systemd stops booting when they run out); fix: sudo sysctl fs.inotify.max_user_instances={needed}"
        ) from None
    log(f"raised fs.inotify.max_user_instances from {current} to {needed} for {hosts} lab hosts")


def _create_network(lab: str, net: str) -> None:
    """The lab's network on a free /24; labs created side by side may pick the same one, and the later retries."""
    for attempt in range(NETWORK_ATTEMPTS):
        subnet = _free_subnet()
        # The gateway (this machine, as the hosts see it) written out, so `docker network inspect` names it.
        created = run(["docker", "network", "create", "--subnet", str(subnet), "--gateway", str(next(subnet.hosts())),
                       "--label", f"{LABEL}={lab}", net], check=False)
        if created.returncode == 0:
            return
        if "overlap" not in created.stderr or attempt == NETWORK_ATTEMPTS - 1:
            raise GymfleetError(f"creating Docker network {net!r} failed: {created.stderr.strip()}")
        time.sleep(0.2 + 0.3 * secrets.randbelow(4))


def up(lab: str, nodes: int, connection: str, image: str, inventory_root: Path, key_dir: Path, log,
       volumes: tuple[str, ...] = ()) -> Path:
    """Create the lab and return the directory of its inventory; undo everything on failure.

    volumes: more `docker run -v` mounts for every host (SRC:DST[:MODE])."""
    existing = _lab_containers(lab)
    if existing:
        raise GymfleetError(
            f"lab {lab!r} already exists ({len(existing)} containers); fix: `gymfleet lab down --name {lab}` "
            "or choose another --name"
        )
    running = run(["docker", "ps", "-q", "--filter", f"label={LABEL}"]).stdout.split()
    ensure_inotify_instances(len(running) + nodes, log)
    net = network_name(lab)
    if run(["docker", "network", "inspect", net], check=False, timeout=30).returncode == 0:
        raise GymfleetError(f"Docker network {net!r} already exists; fix: remove it or choose another --name")
    lab_dir = inventory_root / lab
    created: list[str] = []
    try:
        _create_network(lab, net)
        subnet = ipaddress.ip_network(json.loads(run(["docker", "network", "inspect", net]).stdout)[0]["IPAM"]
                                      ["Config"][0]["Subnet"])
        hosts = list(subnet.hosts())
        members = []
        for index in range(1, nodes + 1):
            container = f"{lab}-node{index}"
            ip = str(hosts[HOST_OFFSET + index - 1])
            log(f"starting {container} at {ip}")
            run([
                "docker", "run", "-d", "--name", container, "--hostname", container,
                "--network", net, "--ip", ip, "--label", f"{LABEL}={lab}", *SYSTEMD_RUN_OPTIONS,
                *mount_options(), *(option for volume in volumes for option in ("-v", volume)), image,
            ])
            created.append(container)
            members.append((container, ip))
        _wait_booted(created)
        key = _ssh_keypair(key_dir, lab)
        _redis_password(key_dir)
        public = key.with_suffix(".pub").read_text()
        for container in created:
            run(["docker", "exec", "-i", container, "sh", "-c",
                 "umask 077 && cat > /root/.ssh/authorized_keys"], input_text=public)
        lab_dir.mkdir(parents=True, exist_ok=True)
        (lab_dir / "hosts.yml").write_text(render_inventory(lab, connection, members, key.resolve()))
    except BaseException:
        _remove(lab, lab_dir, key_dir)
        raise
    return lab_dir


def _remove(lab: str, lab_dir: Path, key_dir: Path) -> None:
    containers = _lab_containers(lab)
    if containers:
        run(["docker", "rm", "-f", *containers], check=False, timeout=120)
    run(["docker", "network", "rm", network_name(lab)], check=False, timeout=60)
    for folder in (lab_dir, key_dir):
        if folder.is_dir():
            shutil.rmtree(folder)


def down(lab: str, inventory_root: Path, key_dir: Path) -> int:
    """Remove the lab's containers, network and inventory; return how many containers were removed."""
    containers = _lab_containers(lab)
    lab_dir = inventory_root / lab
    if not containers and not lab_dir.exists():
        raise GymfleetError(f"no lab named {lab!r}; fix: `gymfleet lab status` lists the labs that exist")
    _remove(lab, lab_dir, key_dir)
    return len(containers)


def status() -> dict[str, list[LabNode]]:
    """Every lab on this engine with its nodes' container and systemd states."""
    fmt = "{{.Names}}\t{{.Label \"" + LABEL + "\"}}\t{{.State}}"
    labs: dict[str, list[LabNode]] = {}
    for line in run(["docker", "ps", "-a", "--filter", f"label={LABEL}", "--format", fmt]).stdout.splitlines():
        container, lab, state = line.split("\t")
        inspect = json.loads(run(["docker", "inspect", container]).stdout)[0]
        ips = [n.get("IPAddress") for n in inspect["NetworkSettings"]["Networks"].values()]
        node = LabNode(container, ips[0] if ips else "-", state)
        if state == "running":
            node.systemd = _systemd_state(container)
        labs.setdefault(lab, []).append(node)
    return {lab: sorted(nodes, key=lambda n: n.name) for lab, nodes in sorted(labs.items())}
