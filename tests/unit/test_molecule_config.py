"""molecule runs with the project's Ansible settings: every setting of ansible.cfg (which `gymfleet` runs with) is
in the shared molecule config with the same value, but for the few that name a place of the checkout, each
written here with its reason."""

import configparser

import yaml

from ..conftest import ROOT

# section -> setting -> why molecule's value differs or is absent.
NOT_SHARED = {
    "defaults": {
        "inventory": "molecule writes each scenario's inventory itself",
        "collections_path": "the same folder, written absolute: molecule runs playbooks from its own folder",
        "roles_path": "molecule puts the scenario's roles on its own path",
        "gathering": "without the fact cache below, smart gathering is the default's once per play",
        "fact_caching": "lab hosts are new in every run: cached facts would describe the last run's hosts",
        "fact_caching_connection": "as fact_caching",
        "fact_caching_timeout": "as fact_caching",
        "interpreter_python": "lab hosts' interpreter is known: /usr/bin/python3, with no discovery",
    },
}


def _normal(value) -> str:
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    return ",".join(part.strip() for part in text.split(",")) if "," in text else text


def test_molecule_runs_with_every_setting_of_ansible_cfg():
    project = configparser.ConfigParser(interpolation=None)
    project.read(ROOT / "ansible.cfg")
    molecule = yaml.safe_load((ROOT / ".config" / "molecule" / "config.yml").read_text())
    options = molecule["provisioner"]["config_options"]
    compared = 0
    for section in project.sections():
        for key, value in project.items(section, raw=True):
            if key in NOT_SHARED.get(section, {}):
                continue
            assert key in options.get(section, {}), f"[{section}] {key} of ansible.cfg is missing in molecule's config"
            assert _normal(options[section][key]) == _normal(value), f"[{section}] {key}"
            compared += 1
    assert compared >= 5, "ansible.cfg was not read"
    for section, keys in NOT_SHARED.items():
        assert set(keys) <= set(project.options(section)), "an exception for a setting ansible.cfg no longer has"


def test_the_settings_reach_the_runs_nested_in_molecules():
    # Nested ansible-playbook runs inherit molecule's ANSIBLE_CONFIG: none may point them at another file.
    for path in (ROOT / "molecule").rglob("*.yml"):
        assert "ANSIBLE_CONFIG" not in path.read_text(), path
