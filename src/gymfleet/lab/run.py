"""Running host commands with errors that say which command failed and why."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

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
