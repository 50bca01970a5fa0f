"""Make sure a Docker engine answers: install Debian's docker.io and start dockerd only when none does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.run import run, start_daemon

ENGINE_START_TIMEOUT = 90


def engine_answers() -> bool:
    if not shutil.which("docker"):
        return False
    return run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20, check=False).returncode == 0


def _install_docker_io(log) -> None:
    if os.geteuid() != 0:
        raise GymfleetError(
            "no Docker engine answers and dockerd is not installed; fix: run as root so gymfleet can "
            "install Debian's docker.io, or install and start Docker yourself"
        )
    if not shutil.which("apt-get"):
        raise GymfleetError(
            "no Docker engine answers and apt-get is missing; fix: install and start a Docker engine"
        )
    log("installing Debian's docker.io (no Docker engine answers)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "docker.io"]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise GymfleetError(
                f"no Docker engine answers and `{' '.join(argv)}` failed ({last[0]}); "
                "fix: install docker.io by hand or point DOCKER_HOST at a running engine"
            )


def _systemd_is_pid1() -> bool:
    return Path("/run/systemd/system").is_dir()


def ensure_engine(log, state_dir: Path) -> None:
    """Return when `docker info` answers; install and start an engine first if needed."""
    if engine_answers():
        return
    if not shutil.which("dockerd"):
        _install_docker_io(log)
    log("starting dockerd")
    if _systemd_is_pid1():
        run(["systemctl", "start", "docker"], check=False, timeout=120)
    if not engine_answers():
        start_daemon(["dockerd"], state_dir / "dockerd.log", engine_answers, ENGINE_START_TIMEOUT, "dockerd")
