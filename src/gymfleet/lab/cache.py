"""The lab's package cache: what lab hosts download is fetched once per machine, not once per host.

APT: an apt-cacher-ng of the lab's own on this machine (the controller; Debian's package, its own configuration and
port, so a Debian apt-cacher-ng service already here is left alone), fetching from the mirrors this machine's APT
sources name. Every lab image asks it through the gateway of its lab network (the image's proxy script falls back to
a direct download when it does not answer). Python: pip's and uv's caches are folders of this machine, mounted into
every lab host where root's installers look for them. The first run fills them; later runs, and every other host of
the same run, read them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.run import start_daemon
from gymfleet.lab.sources import Mirrors

# Not apt-cacher-ng's usual 3142, where a Debian service of the machine's own may answer with other mirrors.
APT_PROXY_PORT = 3152
APT_PROXY_PACKAGE = "apt-cacher-ng"
START_TIMEOUT = 30
# Folder of this machine -> where root's installer on a lab host keeps its cache.
PYTHON_CACHES = {"pip": "/root/.cache/pip", "uv": "/root/.cache/uv"}


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gymfleet" / "lab"


def mount_options(root: Path | None = None) -> list[str]:
    """`docker run` options that mount the Python caches into a lab host, creating the folders first."""
    root = root or cache_root()
    options = []
    for name, inside in PYTHON_CACHES.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        options += ["-v", f"{root / name}:{inside}"]
    return options


def apt_proxy_answers(host: str = "127.0.0.1", port: int = APT_PROXY_PORT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def apt_proxy_config(root: Path, mirrors: Mirrors) -> str:
    """apt-cacher-ng's configuration: its cache under root, Debian's URLs fetched from the host's own mirrors."""
    lines = [
        f"CacheDir: {root / 'apt'}",
        f"LogDir: {root / 'apt-log'}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"Port: {APT_PROXY_PORT}",
        f"Remap-debrep: file:deb_mirror*.gz /debian ; {mirrors.archive.rstrip('/')}/",
        "ExThreshold: 4",
    ]
    if mirrors.security:
        lines.append("Remap-secdeb: security.debian.org security.debian.org/debian-security "
                     f"deb.debian.org/debian-security /debian-security ; {mirrors.security.rstrip('/')}/")
    return "\n".join(lines) + "\n"


def ensure_apt_proxy(log, mirrors: Mirrors) -> None:
    """Start the lab's apt-cacher-ng (installing Debian's package first when missing) unless it answers."""
    if apt_proxy_answers():
        return
    if not shutil.which(APT_PROXY_PACKAGE):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise GymfleetError(
                f"the lab's package cache is not running and {APT_PROXY_PACKAGE} is not installed; fix: install "
                f"Debian's {APT_PROXY_PACKAGE} (as root), or run without the cache (lab hosts then download directly)"
            )
        log(f"installing Debian's {APT_PROXY_PACKAGE} (the lab's APT cache)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", APT_PROXY_PACKAGE], capture_output=True, env=env,
                       check=False)
    root = cache_root()
    config = root / "apt-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "acng.conf").write_text(apt_proxy_config(root, mirrors))
    log(f"starting {APT_PROXY_PACKAGE} on port {APT_PROXY_PORT} (cache: {root / 'apt'})")
    start_daemon([APT_PROXY_PACKAGE, "-c", str(config), "ForeGround=1"], root / "apt-log" / "daemon.log",
                 apt_proxy_answers, START_TIMEOUT, APT_PROXY_PACKAGE)
