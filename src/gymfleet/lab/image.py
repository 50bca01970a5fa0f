"""Build the lab image locally: systemd, sshd and Python on Debian, with this host's CA certificates.

No image registry is reachable on the machines gymfleet is developed on, so the base comes from
`debian:<release>` when the engine already has it or can pull it, and from debootstrap otherwise,
using the mirror that the host's own APT sources name. The image tag is a hash of the recipe, so a
rebuild happens only when the recipe (packages, certificates, mirrors) changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.run import run
from gymfleet.lab.sources import deb822_for_image, host_mirrors

RELEASE = "bookworm"
IMAGE_REPO = "gymfleet-lab"
CA_DIR = Path("/usr/local/share/ca-certificates")
# What a lab host needs so Ansible treats it like a real machine: systemd as PID 1, sshd, Python,
# and the tools the roles call (ip, iptables, systemd-analyze).
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "python3-apt", "openssh-server",
    "sudo", "iproute2", "iptables", "ca-certificates", "procps", "curl", "gnupg", "netbase",
    "debian-archive-keyring",
]

DOCKERFILE = """\
FROM {base}
ENV container=docker
COPY sources.sources /etc/apt/sources.list.d/debian.sources
RUN rm -f /etc/apt/sources.list && \\
    if ! dpkg -s {packages} >/dev/null 2>&1; then \\
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q {packages}; \\
    fi && apt-get clean
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates && \\
    printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf
# Units that have no work to do in a container and would only slow boot or fail.
RUN systemctl mask getty@tty1.service serial-getty@.service systemd-udevd.service \\
      systemd-udev-trigger.service sys-kernel-config.mount systemd-remount-fs.service && \\
    systemctl enable ssh.service && install -d -m 0700 /root/.ssh
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
"""


def _ca_files() -> list[Path]:
    return sorted(p for p in CA_DIR.glob("*.crt") if p.is_file()) if CA_DIR.is_dir() else []


def _image_exists(ref: str) -> bool:
    return run(["docker", "image", "inspect", ref], check=False, timeout=30).returncode == 0


def _debootstrap_base(log, mirror: str) -> str:
    tag = f"{IMAGE_REPO}-base:{RELEASE}-" + hashlib.sha256(
        f"{mirror}|{' '.join(PACKAGES)}".encode()
    ).hexdigest()[:12]
    if _image_exists(tag):
        return tag
    if not shutil.which("debootstrap"):
        log("installing debootstrap")
        run(["apt-get", "install", "-y", "-q", "debootstrap"], timeout=600)
    log(f"debootstrapping Debian {RELEASE} from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="gymfleet-rootfs-") as rootfs:
        run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", RELEASE, rootfs, mirror],
            timeout=1800,
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True, check=False
        )
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise GymfleetError(f"importing the debootstrapped base failed: {imported.stderr.strip()}")
    return tag


def _base_image(log, mirror: str) -> str:
    upstream = f"debian:{RELEASE}"
    if _image_exists(upstream):
        return upstream
    if run(["docker", "pull", upstream], check=False, timeout=120).returncode == 0:
        return upstream
    return _debootstrap_base(log, mirror)


def ensure_image(log) -> str:
    """Return the tag of an up-to-date lab image, building it only when its recipe changed."""
    mirrors = host_mirrors(RELEASE)
    if mirrors is None:
        raise GymfleetError(
            f"no APT source for Debian {RELEASE} found under /etc/apt; fix: add the mirror you use for "
            f"{RELEASE} to /etc/apt/sources.list.d/ so the lab image can be built from it"
        )
    sources = deb822_for_image(RELEASE, mirrors)
    cas = _ca_files()
    recipe = hashlib.sha256()
    for part in (DOCKERFILE, sources, " ".join(PACKAGES), mirrors.archive):
        recipe.update(part.encode())
    for ca in cas:
        recipe.update(ca.name.encode() + ca.read_bytes())
    tag = f"{IMAGE_REPO}:{recipe.hexdigest()[:12]}"
    if _image_exists(tag):
        return tag
    base = _base_image(log, mirrors.archive)
    log(f"building {tag} from {base}")
    with tempfile.TemporaryDirectory(prefix="gymfleet-image-") as ctx:
        ctx_path = Path(ctx)
        (ctx_path / "ca").mkdir()
        for ca in cas:
            shutil.copy(ca, ctx_path / "ca" / ca.name)
        (ctx_path / "sources.sources").write_text(sources)
        (ctx_path / "Dockerfile").write_text(DOCKERFILE.format(base=base, packages=" ".join(PACKAGES)))
        run(["docker", "build", "--network", "host", "-t", tag, "-t", f"{IMAGE_REPO}:latest", ctx], timeout=1800)
    return tag
