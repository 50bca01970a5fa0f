"""Every role's argument specs, defaults and strict validation agree with each other."""

import re
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.gymfleet.cluster.plugins.action.validate_role_vars import (
    _clean,
    load_spec,
    names_the_collection_sets,
    strict_problems,
    unknown_role_variables,
)

ROLES = Path(__file__).resolve().parents[2] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if p.is_dir())


def test_every_role_has_specs_and_meta():
    assert {"cluster_address", "firewall", "omniboxes", "preflight", "python_env", "redis"} <= set(ROLE_NAMES)
    for role in ROLE_NAMES:
        assert (ROLES / role / "meta" / "argument_specs.yml").is_file(), role
        assert (ROLES / role / "meta" / "main.yml").is_file(), role


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_defaults_and_specs_name_the_same_variables(role):
    spec = load_spec(role, "main")
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    assert sorted(defaults) == sorted(spec), "every default is documented and every option has a default"
    # Written once: defaults/main.yml holds the value, the spec only describes it.
    assert [name for name, option in spec.items() if "default" in option] == []
    for name in spec:
        assert name.startswith(f"{role}_"), f"{name} is not prefixed with the role name"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_defaults_satisfy_the_spec(role):
    spec = load_spec(role, "main")
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
    literal = {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}
    result = ArgumentSpecValidator(_clean(spec)).validate(literal)
    assert result.error_messages == []
    assert strict_problems(spec, literal) == []


def test_strict_problems_catch_string_booleans_at_any_depth():
    spec = load_spec("redis", "main")
    values = {"redis_bind_any": "no", "redis_instances": [{"port": 1, "appendonly": "yes"}], "redis_appendonly": False}
    assert sorted(strict_problems(spec, values)) == [
        ("redis_bind_any", "is 'no', not a boolean; fix: write true or false without quotes"),
        ("redis_instances[0].appendonly", "is 'yes', not a boolean; fix: write true or false without quotes"),
    ]


def test_spec_validation_names_the_bad_choice():
    result = ArgumentSpecValidator(_clean(load_spec("redis", "main"))).validate({"redis_maxmemory_policy": "lru"})
    assert any("redis_maxmemory_policy" in message for message in result.error_messages)


def test_a_misspelled_role_variable_is_named_with_the_nearest_one():
    variables = {"ray_verison": "2.10", "ray_gcs_port": 6380, "ray_colour": "blue", "ansible_host": "x",
                 "redis_maxmemroy_policy": "lru"}
    assert unknown_role_variables("ray", load_spec("ray", "main"), variables) == [
        ("ray_colour", ""), ("ray_verison", "ray_version")]
    assert unknown_role_variables("redis", load_spec("redis", "main"), variables) == [
        ("redis_maxmemroy_policy", "redis_maxmemory_policy")]


def test_what_the_roles_set_themselves_is_not_a_misspelling():
    # Facts and results the roles export under their own prefix, which a host's variables carry after a run.
    exported = ["docker_bridge_address", "docker_bridge_subnet", "python_env_declaration", "python_env_result",
                "cluster_address_source", "cluster_address_result"]
    assert set(exported) <= names_the_collection_sets()
    for name in exported:
        role = next(r for r in ROLE_NAMES if name.startswith(f"{r}_"))
        assert unknown_role_variables(role, load_spec(role, "main"), {name: 1}) == []


def test_unknown_role_or_entry_point():
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError, match="cannot read"):
        load_spec("no_such_role", "main")
    with pytest.raises(AnsibleError, match="no entry point"):
        load_spec("redis", "nope")


# `tasks_from: <entry point>` on a gymfleet role, in any playbook, role, scenario or generator.
TASKS_FROM = re.compile(r"name: \"?gymfleet\.cluster\.(\w+)\"?\s*\n\s*tasks_from: (\w+)")
PREFLIGHT_LOOP = re.compile(r"name: \"gymfleet\.cluster\.\{\{ item\.role \}\}\"\s*\n\s*tasks_from: (\w+)")


def _entry_points_used() -> set[tuple[str, str]]:
    root = ROLES.parent
    used = set()
    for path in [*root.glob("playbooks/*.yml"), *root.glob("roles/*/tasks/*.yml"), *root.glob("molecule/*/*.yml"),
                 root / "tools" / "systems.py"]:
        text = path.read_text()
        used |= set(TASKS_FROM.findall(text))
        # Preflight runs every role's own checks that has a preflight.yml.
        for entry in PREFLIGHT_LOOP.findall(text):
            used |= {(role, entry) for role in ROLE_NAMES if (ROLES / role / "tasks" / f"{entry}.yml").is_file()}
    return used


def test_every_entry_point_used_is_documented_and_every_documented_one_exists():
    used = _entry_points_used()
    assert ("ray", "stop") in used and ("ray", "preflight") in used  # the scan sees both kinds of call
    documented = set()
    for role in ROLE_NAMES:
        specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        for entry, spec in specs.items():
            documented.add((role, entry))
            assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), f"{role}: entry point {entry} has no task file"
            assert spec.get("short_description"), f"{role}: entry point {entry} says nothing about itself"
            # An entry point's options are main's, never a second definition of them.
            main_options = specs["main"].get("options", {})
            for name, option in (spec.get("options") or {}).items():
                assert option is main_options.get(name), f"{role}.{entry}: {name} is not main's option (a YAML alias)"
    assert sorted(used - documented) == []


def test_one_call_checks_every_role_of_a_host_and_a_host_without_roles_passes(monkeypatch):
    from types import SimpleNamespace

    from ansible.plugins.action import ActionBase
    from ansible_collections.gymfleet.cluster.plugins.action import validate_role_vars

    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})

    def run(args, task_vars):
        plugin = object.__new__(validate_role_vars.ActionModule)
        plugin._task = SimpleNamespace(args=args)
        plugin._templar = SimpleNamespace(template=lambda value: value)
        return plugin.run(task_vars={"inventory_hostname": "n1", **task_vars})

    assert not run({"roles": []}, {}).get("failed"), "a host in no role's group has nothing to check"
    result = run({"roles": ["firewall", "redis"]}, {"redis_bind_any": "no", "firewall_action": "IGNORE"})
    assert result["failed"] and len(result["problems"]) == 2
    assert any("redis_bind_any is 'no', not a boolean" in line for line in result["problems"])
    assert any("role firewall" in line and "firewall_action" in line for line in result["problems"])
    assert "give role or roles" in run({}, {})["msg"]
