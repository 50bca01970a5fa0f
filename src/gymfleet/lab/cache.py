"""The lab's package cache: what lab hosts download is fetched once per machine, not once per host.

APT: Debian's apt-cacher-ng on this machine (the controller), which every lab image asks for through the gateway of
its lab network (the image's proxy script falls back to a direct download when it does not answer). Python: pip's
and uv's caches are folders of this machine, mounted into every lab host where root's installers look for them.
The first run fills them; later runs, and every other host of the same run, read them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.run import run

APT_PROXY_PORT = 3142
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


def ensure_apt_proxy(log) -> None:
    """Start apt-cacher-ng (installing Debian's package first when missing) unless something answers on its port."""
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
    log(f"starting {APT_PROXY_PACKAGE} on port {APT_PROXY_PORT}")
    if Path("/run/systemd/system").is_dir():
        run(["systemctl", "start", APT_PROXY_PACKAGE], check=False, timeout=60)
    else:
        run([f"/etc/init.d/{APT_PROXY_PACKAGE}", "start"], check=False, timeout=60)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if apt_proxy_answers():
            return
        time.sleep(0.5)
    raise GymfleetError(
        f"{APT_PROXY_PACKAGE} did not answer on port {APT_PROXY_PORT} within {START_TIMEOUT} s; fix: read "
        f"/var/log/{APT_PROXY_PACKAGE}/apt-cacher.err"
    )
