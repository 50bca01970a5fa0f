"""Every module and filter of the collection renders with ansible-doc, with examples and return values."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.yml"))
INVENTORIES = sorted(p.stem for p in (ROOT / "plugins" / "inventory").glob("*.py"))
CALLBACKS = sorted(p.stem for p in (ROOT / "plugins" / "callback").glob("*.py"))


def ansible_doc(kind: str, names: list[str]) -> dict:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", kind, "--json",
         *[f"gymfleet.cluster.{name}" for name in names]],
        cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(("kind", "names"), [("module", MODULES), ("filter", FILTERS), ("inventory", INVENTORIES),
                                                   ("callback", CALLBACKS)])
def test_every_plugin_renders(kind, names):
    assert names
    docs = ansible_doc(kind, names)
    assert sorted(docs) == sorted(f"gymfleet.cluster.{name}" for name in names)
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        if kind == "callback":  # enabled in ansible.cfg, with nothing to show or return
            continue
        assert doc["examples"].strip(), f"{name} has no EXAMPLES"
        if kind != "inventory":  # an inventory plugin returns hosts, not values
            assert doc["return"], f"{name} has no RETURN"
