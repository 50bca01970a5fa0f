"""Write the lifecycle playbooks from meta/systems.yml, or check that they are current (`--check`).

The playbooks are rendered by the collection's plugins/plugin_utils/lifecycle.py, as the gymfleet command renders
them at run time. `make lint` runs `--check`, so the checkout's copies, which ansible-playbook runs, stay current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.gymfleet.cluster.plugins.module_utils.systems import components, stages  # noqa: E402
from ansible_collections.gymfleet.cluster.plugins.plugin_utils.lifecycle import ENTRIES, render  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a playbook differs from the manifest")
    args = parser.parse_args()
    manifest = yaml.safe_load((ROOT / "meta" / "systems.yml").read_text())
    parts = components(manifest, str(ROOT / "roles"))
    notes = {stage["name"]: stage["note"] for stage in stages(manifest)}
    stale = []
    for entry in ENTRIES:
        path = ROOT / "playbooks" / f"{entry}.yml"
        text = render(entry, parts, notes)
        if path.read_text() != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        print(f"playbooks {', '.join(stale)} differ from meta/systems.yml; fix: make systems", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
