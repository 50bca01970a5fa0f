"""Filters around systemd and the services engine: an argv as one Exec line; whether an engine call started anything."""

from __future__ import annotations

from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import UnitError, command_line


def systemd_command_line(argv: list) -> str:
    """Join argv for ExecStart=: bare words stay bare, the rest are double-quoted with C-style escapes."""
    try:
        return command_line(argv)
    except UnitError as exc:
        raise ValueError(f"systemd_command_line: {exc}") from None


def services_started(results: list) -> bool:
    """Whether any of the services engine's results (one registered per host; {} or skipped where it did not run)
    started or restarted a unit."""
    return any(result.get("started") or result.get("restarted") for result in results if isinstance(result, dict))


class FilterModule:
    def filters(self):
        return {"systemd_command_line": systemd_command_line, "services_started": services_started}
