"""The manifest of systems (meta/systems.yml), read by the collection's own reader (module_utils/systems.py), so
the CLI, the playbook generator, preflight and status agree on what it says."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path

import yaml

from gymfleet.errors import GymfleetError


def _load(path: Path, name: str):
    # Loaded from the collection the playbooks come from (a checkout's, or the one an installed wheel carries),
    # by path: its package is Ansible's, which this process need not have set up. It imports only the standard
    # library.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _reader(root: Path):
    return _load(root / "plugins" / "module_utils" / "systems.py", "gymfleet_manifest_reader")


@functools.cache
def _renderer(root: Path):
    path = root / "plugins" / "plugin_utils" / "lifecycle.py"
    # A collection older than the renderer has none: its own playbooks run.
    return _load(path, "gymfleet_lifecycle") if path.is_file() else None


def lifecycle_playbook(root: Path, entry: str) -> Path | None:
    """The lifecycle playbook `entry` (deploy, start, stop, restart, status) for the manifest as it is now: the
    collection's own file when it is current, else one rendered from the manifest into the cache (a system added
    to the manifest needs nothing regenerated). None for any other playbook."""
    lifecycle = _renderer(root)
    if lifecycle is None or entry not in lifecycle.ENTRIES:
        return None
    manifest, components = load(root)
    notes = {stage["name"]: stage["note"] for stage in _reader(root).stages(manifest)}
    shipped = root / "playbooks" / f"{entry}.yml"
    if shipped.is_file() and shipped.read_text() == lifecycle.render(entry, components, notes):
        return shipped
    text = lifecycle.render(entry, components, notes, preflight=str(root / "playbooks" / "preflight.yml"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gymfleet" / "playbooks"
    path = cache / hashlib.sha256(f"{root}\n{text}".encode()).hexdigest()[:16] / f"{entry}.yml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


@functools.cache
def load(root: Path) -> tuple[dict, list[dict]]:
    """The manifest and its components (deploy order, defaults filled in), checked; a broken one is one line."""
    reader = _reader(root)
    manifest = yaml.safe_load((root / "meta" / "systems.yml").read_text())
    try:
        return manifest, reader.components(manifest, str(root / "roles"))
    except reader.ManifestError as exc:
        raise GymfleetError(f"{root / 'meta' / 'systems.yml'}: {exc}") from exc


def status_systems(root: Path) -> dict[str, dict]:
    """System name -> {title, summary line format}, in the order `gymfleet status` shows them."""
    manifest, _ = load(root)
    reader = _reader(root)
    try:
        return reader.status_systems(manifest)
    except reader.ManifestError as exc:
        raise GymfleetError(f"{root / 'meta' / 'systems.yml'}: {exc}") from exc


def status_titles(root: Path) -> dict[str, str]:
    """System name -> title, in the order `gymfleet status` shows them."""
    return {name: system["title"] for name, system in status_systems(root).items()}


def summarize(root: Path, rows: list[dict]) -> dict:
    """One system's numbers from its status rows (the collection's rule: module_utils/systems.py)."""
    return _reader(root).summarize(rows)


def summary_line(root: Path, system: str, summary: dict) -> str:
    """The line after a system's title: the manifest's summary (its default for a system it does not name)."""
    reader = _reader(root)
    line = status_systems(root).get(system, {}).get("summary", reader.DEFAULT_SUMMARY)
    return reader.summary_line(line, summary)


def up_states(root: Path) -> tuple[str, ...]:
    """Row states that count as up (the collection's)."""
    return _reader(root).UP_STATES


def system_components(root: Path, system: str) -> tuple[list[str], list[str]]:
    """The roles of a system and the groups of their hosts."""
    _, components = load(root)
    systems = list(dict.fromkeys(component["system"] for component in components))
    if system not in systems:
        raise GymfleetError(f"no system named {system!r}; fix: use one of {', '.join(systems)}")
    mine = [component for component in components if component["system"] == system]
    groups = list(dict.fromkeys(group for component in mine for group in component["groups"]))
    return [component["role"] for component in mine], groups
