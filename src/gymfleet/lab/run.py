"""Running host commands with errors that say which command failed and why."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gymfleet.errors import GymfleetError


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv and return the completed process; raise GymfleetError on failure when check is set."""
    try:
        proc = subprocess.run(
            list(argv), input=input_text, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise GymfleetError(f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise GymfleetError(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit status {proc.returncode}"
        raise GymfleetError(f"`{' '.join(argv[:3])}` failed: {last}")
    return proc


def start_daemon(argv: Sequence[str], log_file: Path, answers: Callable[[], bool], timeout: float,
                 what: str) -> None:
    """Start argv detached from our session (it outlives this command, as a system service would), its output
    appended to log_file, and return once answers() is true; GymfleetError naming the log after timeout s."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        subprocess.Popen(list(argv), stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers():
            return
        time.sleep(0.5)
    raise GymfleetError(f"{what} did not answer within {timeout:.0f} s; fix: read {log_file}")
