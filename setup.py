"""The wheel carries the collection, so that `pip install gymfleet` plus an inventory is enough: no checkout.

Everything else is in pyproject.toml. build_py copies the collection (galaxy.yml, meta/, playbooks/, plugins/,
roles/) to gymfleet/collection/ansible_collections/gymfleet/cluster/ in the wheel, with an ansible.cfg of its own
whose paths point inside the package and whose caches are the user's (site-packages may not be writable).
"""

import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PARTS = ("galaxy.yml", "meta", "playbooks", "plugins", "roles")
# The checkout's settings that name places in the checkout, and what they become in the package.
INSTALLED_SETTINGS = {
    "inventory": None,  # no lab beside an installed package: -i names the inventory
    "collections_path": "../../..:~/.ansible/collections:/usr/share/ansible/collections",
    "roles_path": "./roles",
    "fact_caching_connection": "~/.cache/gymfleet/facts",
}


def installed_config(text: str) -> str:
    """The checkout's ansible.cfg with INSTALLED_SETTINGS applied (a None drops the setting)."""
    lines = []
    for line in text.splitlines():
        key = re.match(r"^(\w+)\s*=", line)
        if key and key.group(1) in INSTALLED_SETTINGS:
            value = INSTALLED_SETTINGS[key.group(1)]
            if value is None:
                continue
            line = f"{key.group(1)} = {value}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class BuildWithCollection(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "gymfleet" / "collection" / "ansible_collections" / "gymfleet" / "cluster"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in PARTS:
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(source, target / part, ignore=ignore)
            else:
                shutil.copy2(source, target / part)
        (target / "ansible.cfg").write_text(installed_config((ROOT / "ansible.cfg").read_text()))


setup(cmdclass={"build_py": BuildWithCollection})
