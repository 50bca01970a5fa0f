#!/usr/bin/python
"""Read the logs of gymfleet's services on one host: their journal, and the log files their units name."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_logs
short_description: Read the recent logs of a system's services on this host, with a time on every line
version_added: 0.3.0
author: gymfleet developers
description:
  - Finds the units gymfleet wrote for O(components) (by their C(X-Gymfleet-Component) mark, such as C(ray), or
    a component of the role's own such as C(omniboxes-redis)) and reads their journal (C(journalctl -o json)).
  - Also reads the files a unit names in its C(X-Gymfleet-Logs) mark (globs, such as Ray's session logs), with the
    time a line starts with, else the time of the line before it, else the file's modification time.
  - At most O(lines) entries from the journal and O(lines) from each file, none older than O(since); the
    caller merges hosts by time. Changes nothing.
options:
  components:
    description: The components whose services to read, such as C([omniboxes]) or C([ray]).
    type: list
    elements: str
    required: true
  since:
    description: Only entries at or after this time, in seconds since the epoch (UTC); 0 for no bound.
    type: float
    default: 0
  lines:
    description: At most this many of the newest entries from the journal, and from each log file.
    type: int
    default: 100
  unit_dir:
    description: Where the units are.
    type: path
    default: /etc/systemd/system
attributes:
  check_mode:
    support: full
    details: It changes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The last 50 lines of Ray's services and session logs from the past ten minutes
  gymfleet.cluster.service_logs:
    components: [ray]
    since: "{{ now(utc=true).timestamp() - 600 }}"
    lines: 50
"""

RETURN = r"""
units:
  description: The units found for the components.
  returned: always
  type: list
  elements: str
  sample: [ray-head.service]
files:
  description: The log files read.
  returned: always
  type: list
  elements: str
  sample: [/var/lib/ray/tmp/session_latest/logs/raylet.out]
entries:
  description: Oldest first; each with its time (seconds since the epoch), its source (a unit or a file) and text.
  returned: always
  type: list
  elements: dict
  sample: [{time: 1796547600.25, source: ray-head.service, message: "Local node IP: 192.0.2.11"}]
"""

import glob
import json
import os
import re
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.systemd_services import LOGS_MARK, MARK

# The time a line of a log file starts with: Ray's `[2026-12-06 09:00:01,234 I ...`, Python logging's
# `2026-12-06 09:00:01,234 INFO`, ISO 8601. Read as the host's local time, as those programs write it.
LINE_TIME = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6}))?")
# The tail of a file that is read for its last lines: enough for a few thousand lines.
TAIL_BYTES = 512 * 1024


def unit_marks(unit_dir: str, components: list[str]) -> dict[str, list[str]]:
    """Unit name -> the log globs it names, for every unit of one of the components."""
    found = {}
    for path in sorted(glob.glob(os.path.join(unit_dir, "*.service"))):
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        values = dict(line.split("=", 1) for line in text.splitlines() if line.startswith(("X-Gymfleet-",)) and
                      "=" in line)
        component = values.get(MARK, "").strip()
        if component and any(component == c or component.startswith(f"{c}-") for c in components):
            found[os.path.basename(path)] = values.get(LOGS_MARK, "").split()
    return found


def journal_entries(lines_json: str) -> list[dict]:
    """journalctl -o json's lines as entries (a MESSAGE journald stored as bytes is decoded)."""
    entries = []
    for line in lines_json.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("MESSAGE", "")
        if isinstance(message, list):
            message = bytes(message).decode(errors="replace")
        entries.append({"time": int(record.get("__REALTIME_TIMESTAMP", 0)) / 1e6,
                        # systemd's own lines about a unit (Started, Stopping) come from init.scope with UNIT set.
                        "source": record.get("UNIT") or record.get("_SYSTEMD_UNIT") or "journal",
                        "message": str(message)})
    return entries


def line_time(line: str) -> float | None:
    found = LINE_TIME.match(line)
    if not found:
        return None
    date, clock, fraction = found.groups()
    try:
        moment = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction.ljust(6, "0")) / 1e6 if fraction else 0.0)


def file_entries(path: str, since: float, lines: int) -> list[dict]:
    """The last `lines` lines of a file at or after `since`, each with a time."""
    try:
        size = os.path.getsize(path)
        mtime = os.path.getmtime(path)
        with open(path, "rb") as handle:
            handle.seek(max(0, size - TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    rows = text.splitlines()[1:] if size > TAIL_BYTES else text.splitlines()
    entries, current = [], None
    for row in rows:
        current = line_time(row) or current
        entries.append({"time": current, "source": os.path.basename(path), "message": row})
    for entry in entries:
        # Lines before the first one with a time: the file's modification time is all there is.
        entry["time"] = entry["time"] if entry["time"] is not None else mtime
    return [entry for entry in entries if entry["message"].strip() and entry["time"] >= since][-lines:]


def main():
    module = AnsibleModule(argument_spec={
        "components": {"type": "list", "elements": "str", "required": True},
        "since": {"type": "float", "default": 0},
        "lines": {"type": "int", "default": 100},
        "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
    }, supports_check_mode=True)
    params = module.params
    if params["lines"] < 1:
        module.fail_json(msg=f"lines is {params['lines']}; fix: ask for 1 or more")
    units = unit_marks(params["unit_dir"], params["components"])
    entries, files = [], []
    if units:
        argv = [module.get_bin_path("journalctl", required=True), "-o", "json", "--no-pager", "-n",
                str(params["lines"])]
        for unit in units:
            argv += ["-u", unit]
        if params["since"]:
            argv += ["--since", f"@{params['since']:.6f}"]
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"journalctl failed ({err.strip() or rc}); fix: check that journald runs here")
        entries += journal_entries(out)
        for pattern in sorted({p for patterns in units.values() for p in patterns}):
            for path in sorted(glob.glob(pattern)):
                if os.path.isfile(path):
                    files.append(path)
                    entries += file_entries(path, params["since"], params["lines"])
    entries.sort(key=lambda entry: entry["time"])
    module.exit_json(changed=False, units=sorted(units), files=files, entries=entries)


if __name__ == "__main__":
    main()
