"""The manifest of systems (meta/systems.yml): checked once here for the generator, preflight and status."""

from __future__ import annotations

import os
import string

ENTRY_POINTS = ("start", "stop", "restart", "status")
# A system's summary line in `gymfleet status` unless the manifest gives one: its rows that are up.
DEFAULT_SUMMARY = "up {components_up}/{components}"
# Row states that count as up: a parameter-server process that ran its part of the job to the end is done.
UP_STATES = ("up", "done")
# The stages of a manifest that names none.
ONE_STAGE = [{"name": "all", "note": "every component."}]
COMPONENT_KEYS = {"role", "groups", "title", "tags", "any_errors_fatal", "note", "deploy", "stage"}


class ManifestError(ValueError):
    """A manifest that cannot drive the playbooks; the message names the entry and the fix."""


def components(manifest: dict, roles_dir: str) -> list[dict]:
    """Every component in deploy order with its defaults filled in and the entry points its role has."""
    systems = manifest.get("systems") if isinstance(manifest, dict) else None
    if not isinstance(systems, list) or not systems:
        raise ManifestError("meta/systems.yml has no list `systems`; fix: restore it from the repository")
    stage_names = [stage["name"] for stage in stages(manifest)]
    found, roles, current = [], set(), stage_names[0]
    for system in systems:
        name = system.get("name")
        if not name or not system.get("title") or not system.get("components"):
            raise ManifestError(f"system {system!r}: needs name, title and components")
        try:
            list(string.Formatter().parse(str(system.get("summary", DEFAULT_SUMMARY))))
        except ValueError as exc:
            raise ManifestError(f"system {name}: summary cannot be read as a line with {{names}} ({exc}); fix: "
                                "double a brace meant literally") from None
        for component in system["components"]:
            unknown = set(component) - COMPONENT_KEYS
            if unknown:
                raise ManifestError(f"system {name}: unknown keys {sorted(unknown)}; fix: use {sorted(COMPONENT_KEYS)}")
            role = component.get("role")
            tasks = os.path.join(roles_dir, str(role), "tasks")
            if not os.path.isdir(tasks):
                raise ManifestError(f"system {name}: role {role!r} has no tasks/ under {roles_dir}")
            if role in roles:
                raise ManifestError(f"role {role} is listed twice; fix: one component per role")
            roles.add(role)
            if not component.get("groups"):
                raise ManifestError(f"system {name}: role {role} names no groups")
            stage = component.get("stage", system.get("stage", current))
            if stage not in stage_names or stage_names.index(stage) < stage_names.index(current):
                raise ManifestError(f"system {name}: role {role} is in stage {stage!r}, after a component of stage "
                                    f"{current!r}; fix: name a stage of `stages` no earlier than {current!r}")
            current = stage
            found.append({
                "system": name, "role": role, "groups": list(component["groups"]),
                "title": component.get("title", system["title"]),
                "tags": list(component.get("tags", [name])),
                "any_errors_fatal": bool(component.get("any_errors_fatal", False)),
                "note": " ".join(str(component.get("note", "")).split()),
                "deploy": bool(component.get("deploy", True)),
                "stage": stage,
                "preflight": os.path.isfile(os.path.join(tasks, "preflight.yml")),
                "entry_points": [e for e in ENTRY_POINTS if os.path.isfile(os.path.join(tasks, f"{e}.yml"))],
                "declares_services": _declares_services(roles_dir, role),
            })
    return found


def stages(manifest: dict) -> list[dict]:
    """The deploy's stages in order, each with its name and note (one stage when the manifest names none). A stage
    ends with one engine call per host that carries every call its components deferred, so the next stage finds
    them converged on every host."""
    found = manifest.get("stages", ONE_STAGE) if isinstance(manifest, dict) else None
    if not isinstance(found, list) or not found or not all(isinstance(s, dict) and s.get("name") for s in found):
        raise ManifestError("meta/systems.yml: `stages` must be a list of entries with a name; fix: restore it from "
                            "the repository")
    return [{"name": str(s["name"]), "note": " ".join(str(s.get("note", "")).split())} for s in found]


def _declares_services(roles_dir: str, role: str) -> bool:
    """Whether the role declares services for the engine (a __<role>_services variable in vars/main.yml): its
    installed units can then be started, restarted and stopped without a task file of its own."""
    try:
        with open(os.path.join(roles_dir, role, "vars", "main.yml"), encoding="utf-8") as handle:
            return any(line.startswith(f"__{role}_services:") for line in handle)
    except OSError:
        return False


def status_titles(manifest: dict) -> dict[str, str]:
    """System name -> title, in the order `gymfleet status` shows them."""
    titles = {system["name"]: system["title"] for system in manifest["systems"]}
    # status_order puts the ones a person looks at first; a system it does not name (a new one) comes after.
    order = list(manifest.get("status_order") or [])
    order += [name for name in titles if name not in order]
    missing = [name for name in order if name not in titles]
    if missing:
        raise ManifestError(f"status_order names {missing}, which are not systems; fix: remove them")
    return {name: titles[name] for name in order}


def status_systems(manifest: dict) -> dict[str, dict]:
    """System name -> {title, summary}, in the order `gymfleet status` shows them; summary is the line's format."""
    formats = {system["name"]: str(system.get("summary", DEFAULT_SUMMARY)) for system in manifest["systems"]}
    return {name: {"title": title, "summary": formats[name]} for name, title in status_titles(manifest).items()}


def summarize(rows: list[dict]) -> dict:
    """One system's numbers from its status rows: how many are up and how many there are, then what the rows'
    judges give each row to add up (its `summary`): numbers add (unknown when one row does not know), lists
    join, anything else is the first row's that gives it."""
    summary: dict = {"components_up": sum(row["state"] in UP_STATES for row in rows), "components": len(rows)}
    for row in rows:
        for key, value in (row.get("summary") or {}).items():
            if key not in summary:
                summary[key] = list(value) if isinstance(value, list) else value
            elif isinstance(value, list):
                summary[key] = summary[key] + value
            elif _number(value) and _number(summary[key]):
                summary[key] += value
            elif value is None and _number(summary[key]):
                summary[key] = None
    return summary


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Shown(dict):
    def __missing__(self, key):
        return "?"


def summary_line(line: str, summary: dict) -> str:
    """The manifest's summary line with the system's numbers: an unknown one shows as ?, a list as its items
    (none when empty)."""
    shown = _Shown({key: "?" if value is None else (" ".join(map(str, value)) or "none") if isinstance(value, list)
                    else value for key, value in summary.items()})
    return line.format_map(shown)
