"""An argv list as one systemd command line (ExecStart=), quoted so systemd gives the program exactly that argv."""

from __future__ import annotations

from ansible_collections.gymfleet.cluster.plugins.module_utils.unit_file import UnitError, command_line


def systemd_command_line(argv: list) -> str:
    """Join argv for ExecStart=: bare words stay bare, the rest are double-quoted with C-style escapes."""
    try:
        return command_line(argv)
    except UnitError as exc:
        raise ValueError(f"systemd_command_line: {exc}") from None


class FilterModule:
    def filters(self):
        return {"systemd_command_line": systemd_command_line}
