"""Build the lab images locally: systemd, sshd and Python on Debian, with this host's CA certificates.

No image registry is reachable on the machines gymfleet is developed on, so the base comes from
`debian:<release>` when the engine already has it or can pull it, and from debootstrap otherwise,
using the mirror that the host's own APT sources name. Each tag is a hash of its recipe, so a rebuild
happens only when a recipe (packages, certificates, mirrors) changes.

Two images, one on the other:
  bare  what every Debian host has, plus Docker's packages downloaded but not installed: the image for tests
        that prove a role's own install path (and an engine's first start)
  full  bare with what the roles install from Debian already installed (and uv): the image labs use unless told
        otherwise, so a test does not pay for an install it does not test
Both send APT through the lab's package cache when it answers (gymfleet.lab.cache), and directly otherwise.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.cache import APT_PROXY_PORT
from gymfleet.lab.run import run
from gymfleet.lab.sources import Mirrors, deb822_for_image, host_mirrors

RELEASE = "bookworm"
IMAGE_REPO = "gymfleet-lab"
FULL = f"{IMAGE_REPO}:latest"
BARE = f"{IMAGE_REPO}:bare"
CA_DIR = Path("/usr/local/share/ca-certificates")
# What a lab host needs so Ansible treats it like a real machine: systemd as PID 1, sshd, Python,
# and the tools the roles call (ip, iptables, systemd-analyze).
PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "python3-apt", "openssh-server",
    "sudo", "iproute2", "iptables", "ca-certificates", "procps", "curl", "gnupg", "netbase",
    "debian-archive-keyring",
]
# In /var/cache/apt/archives of both images, not installed: a test of an engine's first start installs them
# without a download.
DOWNLOADED = ["docker.io"]
# Installed in the full image: what roles (redis, omniboxes' system browser) and the tests' own setup (SLURM)
# install from Debian, and the compilers and libraries that ps-lite builds against.
PRELOADED = [
    "redis-server", "chromium", "slurm-wlm", "munge", "build-essential", "libzmq3-dev", "libprotobuf-dev",
    "protobuf-compiler", "python3-pip",
]
# Services those packages enable at boot: a lab host starts with none of them, as a host before a deploy would.
PRELOADED_SERVICES_OFF = ["redis-server", "slurmd", "slurmctld", "munge"]
# Installers on lab hosts: python_env's `auto` picks uv where it is on PATH.
UV_VERSION = "0.13.10"

# APT asks this script for a proxy before each download: the lab's cache on the host's gateway when it answers there.
APT_PROXY_DETECT = f"""\
#!/bin/sh
# Written by gymfleet's lab image: APT goes through the lab's package cache when it answers on the gateway.
gateway=$(ip -4 route show default 2>/dev/null | awk '{{print $3; exit}}')
if [ -n "$gateway" ] && timeout 1 bash -c "exec 3<>/dev/tcp/$gateway/{APT_PROXY_PORT}" 2>/dev/null; then
  echo "http://$gateway:{APT_PROXY_PORT}"
else
  echo DIRECT
fi
"""

BARE_DOCKERFILE = """\
FROM {base}
ENV container=docker
COPY sources.sources /etc/apt/sources.list.d/debian.sources
COPY apt-proxy-detect /usr/local/lib/gymfleet/apt-proxy-detect
RUN rm -f /etc/apt/sources.list && \\
    printf 'Acquire::http::Proxy-Auto-Detect "/usr/local/lib/gymfleet/apt-proxy-detect";\\n' \\
      > /etc/apt/apt.conf.d/01gymfleet-lab-cache && \\
    if ! dpkg -s {packages} >/dev/null 2>&1; then \\
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q {packages}; \\
    fi && apt-get update -q && apt-get install -y -q --download-only {downloaded}
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

FULL_DOCKERFILE = """\
FROM {bare}
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q {preloaded} && \\
    systemctl disable {services_off} && \\
    python3 -m pip install --quiet --break-system-packages uv=={uv_version} && \\
    install -d /etc/uv && printf 'native-tls = true\\nlink-mode = "copy"\\n' > /etc/uv/uv.toml
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


def _build(log, tag: str, alias: str, files: dict[str, str], cas: list[Path]) -> None:
    log(f"building {tag}")
    with tempfile.TemporaryDirectory(prefix="gymfleet-image-") as ctx:
        ctx_path = Path(ctx)
        (ctx_path / "ca").mkdir()
        for ca in cas:
            shutil.copy(ca, ctx_path / "ca" / ca.name)
        for name, text in files.items():
            (ctx_path / name).write_text(text)
            (ctx_path / name).chmod(0o755)  # the proxy script runs as it is copied
        run(["docker", "build", "--network", "host", "-t", tag, "-t", alias, ctx], timeout=1800)


def recipe_tags(sources: str, archive: str, cas: list[Path]) -> tuple[str, str]:
    """The bare and full images' tags: hashes of their recipes, the full one's including the bare one's."""
    bare = hashlib.sha256()
    for part in (BARE_DOCKERFILE, APT_PROXY_DETECT, sources, " ".join(PACKAGES), " ".join(DOWNLOADED), archive):
        bare.update(part.encode())
    for ca in cas:
        bare.update(ca.name.encode() + ca.read_bytes())
    full = hashlib.sha256(bare.hexdigest().encode())
    for part in (FULL_DOCKERFILE, " ".join(PRELOADED), " ".join(PRELOADED_SERVICES_OFF), UV_VERSION):
        full.update(part.encode())
    return f"{IMAGE_REPO}:bare-{bare.hexdigest()[:12]}", f"{IMAGE_REPO}:{full.hexdigest()[:12]}"


def release_mirrors() -> Mirrors:
    mirrors = host_mirrors(RELEASE)
    if mirrors is None:
        raise GymfleetError(
            f"no APT source for Debian {RELEASE} found under /etc/apt; fix: add the mirror you use for "
            f"{RELEASE} to /etc/apt/sources.list.d/ so the lab image can be built from it"
        )
    return mirrors


def ensure_images(log) -> tuple[str, str]:
    """Return the tags of up-to-date bare and full lab images, building each only when its recipe changed."""
    mirrors = release_mirrors()
    sources = deb822_for_image(RELEASE, mirrors)
    cas = _ca_files()
    bare_tag, full_tag = recipe_tags(sources, mirrors.archive, cas)
    if not _image_exists(bare_tag):
        base = _base_image(log, mirrors.archive)
        dockerfile = BARE_DOCKERFILE.format(base=base, packages=" ".join(PACKAGES), downloaded=" ".join(DOWNLOADED))
        _build(log, bare_tag, BARE, {"Dockerfile": dockerfile, "sources.sources": sources,
                                     "apt-proxy-detect": APT_PROXY_DETECT}, cas)
    else:
        run(["docker", "tag", bare_tag, BARE])  # the alias may still name an older build
    if not _image_exists(full_tag):
        dockerfile = FULL_DOCKERFILE.format(bare=bare_tag, preloaded=" ".join(PRELOADED),
                                            services_off=" ".join(PRELOADED_SERVICES_OFF), uv_version=UV_VERSION)
        _build(log, full_tag, FULL, {"Dockerfile": dockerfile}, [])
    else:
        run(["docker", "tag", full_tag, FULL])
    return bare_tag, full_tag
