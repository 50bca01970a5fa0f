"""An argv list as one systemd command line (ExecStart=), quoted so systemd gives the program exactly that argv."""

from __future__ import annotations

import re

# Arguments made only of these need no quotes (systemd.syntax: words are split on whitespace, and quotes
# and backslashes are special).
_BARE = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def _word(arg: str) -> str:
    # systemd expands specifiers (%) and environment variables ($) in Exec lines: double them for a literal.
    arg = str(arg).replace("%", "%%").replace("$", "$$")
    if _BARE.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_command_line(argv: list) -> str:
    """Join argv for ExecStart=: bare words stay bare, the rest are double-quoted with C-style escapes."""
    if not argv:
        raise ValueError("systemd_command_line: argv is empty")
    return " ".join(_word(arg) for arg in argv)


class FilterModule:
    def filters(self):
        return {"systemd_command_line": systemd_command_line}
