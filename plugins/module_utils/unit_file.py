"""Render systemd unit files from data and check them with systemd-analyze.

Shared by the systemd_unit module and by every role that ships a unit: a unit is a mapping of
sections to directives, so roles describe services as data and never hand-edit INI text.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
             "/lib/systemd/system", "/usr/lib/systemd/system")
UNIT_NAME_RE = re.compile(r"^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|timer|target|path|mount)$")
# systemd only warns about these, but in data we generate they are always a typo.
WARNING_RE = re.compile(r"Unknown (key|section|lvalue)|Failed to parse|Invalid|is not executable|not absolute")


# Arguments made only of these need no quotes (systemd.syntax: words are split on whitespace, and quotes
# and backslashes are special).
_BARE = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")
# Directive names: systemd's own, or X- ones, which systemd ignores and gymfleet uses for its marks.
_DIRECTIVE = re.compile(r"^([A-Za-z][A-Za-z0-9]*|X-[A-Za-z0-9-]+)$")


class UnitError(ValueError):
    """A unit description that cannot be rendered."""


def _word(arg) -> str:
    # systemd expands specifiers (%) and environment variables ($) in Exec lines: double them for a literal.
    arg = str(arg).replace("%", "%%").replace("$", "$$")
    if _BARE.match(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(argv: list) -> str:
    """Join argv for ExecStart=: bare words stay bare, the rest are double-quoted with C-style escapes."""
    if not argv:
        raise UnitError("the command line (argv) is empty")
    return " ".join(_word(arg) for arg in argv)


def environment_assignment(name: str, value: str) -> str:
    """One Environment= value, quoted so that spaces, quotes and backslashes reach the process unchanged."""
    text = f"{name}={value}".replace("%", "%%")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if "\n" in text:
        raise UnitError(f"value {text!r} spans several lines")
    return text


def render_unit(sections: dict, header: str | None = None) -> str:
    """INI text for a mapping of section -> {directive: value}; a list value repeats the directive.

    A value of None is left out, so role data can switch a directive off without reshaping the dict.
    """
    if not isinstance(sections, dict) or not sections:
        raise UnitError("sections must be a non-empty mapping of section name to directives")
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for section, directives in sections.items():
        if not isinstance(directives, dict):
            raise UnitError(f"section [{section}] must be a mapping of directives")
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        for key, value in directives.items():
            if not _DIRECTIVE.match(str(key)):
                raise UnitError(f"[{section}] directive name {key!r} is not valid")
            values = value if isinstance(value, list) else [value]
            lines.extend(f"{key}={_value(v)}" for v in values if v is not None)
    return "\n".join(lines) + "\n"


def read_unit(path: str) -> str | None:
    """A unit file's text, or None when there is none."""
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def find_unit_file(name: str) -> str | None:
    """The file systemd would load for a unit name (a template's file for an instance name)."""
    candidates = [name]
    if "@" in name and not name.split("@", 1)[1].startswith("."):
        prefix, suffix = name.split("@", 1)
        candidates.append(f"{prefix}@.{suffix.rsplit('.', 1)[1]}")
    for folder in UNIT_DIRS:
        for candidate in candidates:
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    return None


def verify(run_command, name: str, content: str, dropin: str | None = None, base_unit: str | None = None,
           siblings: dict | None = None):
    """Check a unit (or a drop-in over base_unit's file) with systemd-analyze verify.

    run_command is AnsibleModule.run_command or a stand-in with the same signature. siblings: other units (name ->
    content) about to be written with this one, put beside it so that a dependency on one of them resolves
    (systemd-analyze looks in the directory of the file it verifies). Returns a list of problems; empty means
    systemd accepts it.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return ["systemd-analyze is not installed, so the unit cannot be verified"]
    folder = tempfile.mkdtemp(prefix="gymfleet-unit-")
    try:
        unit_path = os.path.join(folder, name)
        if dropin:
            if base_unit is None:
                return [f"{name} has no unit file on this host to apply the drop-in {dropin} to"]
            shutil.copyfile(base_unit, unit_path)
            os.mkdir(unit_path + ".d")
            with open(os.path.join(unit_path + ".d", dropin), "w") as handle:
                handle.write(content)
        else:
            with open(unit_path, "w") as handle:
                handle.write(content)
        for sibling, text in (siblings or {}).items():
            if sibling != name:
                with open(os.path.join(folder, sibling), "w") as handle:
                    handle.write(text)
        rc, out, err = run_command([analyze, "verify", "--man=no", unit_path])
        text = f"{out}\n{err}".replace(folder + "/", "")
        problems = [line.strip() for line in text.splitlines() if WARNING_RE.search(line)]
        if rc != 0 and not problems:
            problems = [line.strip() for line in text.splitlines() if line.strip()] or [f"exit status {rc}"]
        return problems
    finally:
        shutil.rmtree(folder, ignore_errors=True)
