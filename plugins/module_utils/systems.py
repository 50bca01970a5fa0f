"""The manifest of systems (meta/systems.yml): checked once here for the generator, preflight and status."""

from __future__ import annotations

import os

ENTRY_POINTS = ("start", "stop", "restart", "status")
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
    found = manifest.get("stages", [{"name": "all", "note": "every component."}]) if isinstance(manifest, dict) else None
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
