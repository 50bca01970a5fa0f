"""The manifest of systems drives the lifecycle playbooks, preflight's components and status's titles."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.gymfleet.cluster.plugins.module_utils.systems import ManifestError, components, status_titles

from gymfleet.status import system_titles

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "meta" / "systems.yml").read_text())
ROLES = str(ROOT / "roles")


def test_every_role_that_runs_something_is_a_component_once():
    parts = components(MANIFEST, ROLES)
    roles = [p["role"] for p in parts]
    assert len(roles) == len(set(roles))
    # Roles that are only included by others (python_env also stands alone; preflight runs first).
    helpers = {"preflight"}
    assert set(roles) | helpers == {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()}


def test_components_know_their_entry_points_from_the_role_files():
    parts = {p["role"]: p for p in components(MANIFEST, ROLES)}
    assert parts["redis"]["entry_points"] == ["status"] and parts["redis"]["declares_services"] is True
    assert parts["ray"]["entry_points"] == ["start", "stop", "restart", "status"]
    assert parts["firewall"]["declares_services"] is False
    assert parts["static_routes"]["entry_points"] == [] and parts["static_routes"]["preflight"] is False
    assert parts["firewall"]["entry_points"] == ["status"] and parts["firewall"]["preflight"] is True
    assert parts["redis"]["preflight"] is True
    assert parts["envoy"]["tags"] == ["openenv", "envoy"] and parts["ray"]["tags"] == ["ray"]
    assert parts["parameter_server"]["any_errors_fatal"] is True


def test_a_role_that_declares_services_gets_generic_entry_points_from_its_installed_units():
    start = yaml.safe_load((ROOT / "playbooks" / "start.yml").read_text())
    [redis] = [play for play in start if play.get("hosts") == "redis"]
    assert redis["tasks"] == [{"name": "Start Redis, as installed", "gymfleet.cluster.services": {
        "component": "redis", "installed": True, "state": "started",
        "timeout": "{{ redis_wait_timeout | default(300) }}"}}]
    # A role without services (the firewall's boot unit is no service to stop) gets none.
    stop = yaml.safe_load((ROOT / "playbooks" / "stop.yml").read_text())
    assert not [play for play in stop if play.get("hosts") == "cluster"]


def test_the_playbooks_are_current():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "systems.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_stop_runs_in_reverse_and_keeps_going_when_a_host_fails():
    stop = yaml.safe_load((ROOT / "playbooks" / "stop.yml").read_text())
    hosts = [play["hosts"] for play in stop if "hosts" in play]
    assert hosts[0] == "parameter_server" and hosts[-1] == "redis"
    assert not any(play.get("any_errors_fatal") for play in stop)
    deploy = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    assert [p for p in deploy if p.get("hosts") == "parameter_server"][0]["any_errors_fatal"] is True


@pytest.mark.parametrize("change, words", [
    (lambda m: m["systems"][3]["components"].append({"role": "redis", "groups": ["x"]}), "listed twice"),
    (lambda m: m["systems"][3]["components"].append({"role": "nope", "groups": ["x"]}), "has no tasks/"),
    (lambda m: m["systems"][3]["components"][0].update(colour="red"), "unknown keys"),
    (lambda m: m["systems"][3]["components"][0].update(groups=[]), "names no groups"),
    (lambda m: m.update(systems=[]), "no list `systems`"),
    (lambda m: m["systems"][3]["components"][0].update(stage="nosuch"), "in stage 'nosuch'"),
    # Back to an earlier stage after a later one: the flush between them would come too early.
    (lambda m: m["systems"][-1]["components"][-1].update(stage="hosts"), "no earlier than 'network'"),
    (lambda m: m.update(stages=[{"note": "nameless"}]), "must be a list of entries with a name"),
])
def test_a_broken_manifest_is_named(change, words):
    manifest = copy.deepcopy(MANIFEST)
    change(manifest)
    with pytest.raises(ManifestError, match=words):
        components(manifest, ROLES)


def test_status_titles_follow_status_order():
    titles = system_titles()
    assert list(titles)[:4] == ["cluster", "omniboxes", "ray", "openenv"] and titles["openenv"] == "OpenEnv / Envoy"
    with pytest.raises(ManifestError, match="not systems"):
        status_titles({**MANIFEST, "status_order": ["nosuch"]})


def test_the_cli_reads_the_manifest_through_the_collections_reader(tmp_path):
    import shutil

    from gymfleet import manifest
    from gymfleet.errors import GymfleetError

    assert manifest.system_components(ROOT, "openenv") == (["openenv", "envoy"], ["openenv_worker", "openenv_envoy"])
    with pytest.raises(GymfleetError, match=r"no system named 'nosuch'; fix: use one of cluster, tailscale, "):
        manifest.system_components(ROOT, "nosuch")
    # A copy whose manifest lists a role that does not exist: the same one line preflight would give.
    copy_root = tmp_path / "collection"
    shutil.copytree(ROOT / "plugins" / "module_utils", copy_root / "plugins" / "module_utils")
    (copy_root / "roles").mkdir()
    (copy_root / "meta").mkdir()
    (copy_root / "meta" / "systems.yml").write_text(
        "systems:\n  - {name: x, title: X, components: [{role: nosuch, groups: [g]}]}\n")
    with pytest.raises(GymfleetError, match=r"systems.yml: system x: role 'nosuch' has no tasks/ under "):
        manifest.status_titles(copy_root)


def test_each_stage_of_the_deploy_ends_with_one_engine_call_per_host_under_every_tag():
    deploy = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    names = [play["name"] for play in deploy]
    flushes = [play for play in deploy if play["name"].startswith("End of stage")]
    assert [play["name"] for play in flushes] == [f"End of stage {s['name']}" for s in MANIFEST["stages"]]
    assert all(play["hosts"] == "all" and play["tags"] == ["always"] for play in flushes)
    assert all(play["tasks"][0]["gymfleet.cluster.services"] == {"flush": True} for play in flushes)
    assert names.index("End of stage hosts") < names.index("Envoy in front of the environment servers") < \
        names.index("End of stage front")
    assert names[-1] == "End of stage job"
    # Every component's play may queue: the roles defer only calls whose result nothing reads.
    assert all(play.get("vars") == {"gymfleet_engine_batch": True} for play in deploy
               if "ansible.builtin.import_playbook" not in play and play not in flushes)
    # A manifest without stages is one stage.
    single = copy.deepcopy(MANIFEST)
    del single["stages"]
    for part in single["systems"]:
        for component in part["components"]:
            component.pop("stage", None)
    assert {c["stage"] for c in components(single, ROLES)} == {"all"}


def test_the_cli_runs_the_shipped_playbook_when_current_and_one_rendered_from_the_manifest_when_not(
        tmp_path, monkeypatch):
    from gymfleet import manifest

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "collection"
    for part in ("meta", "playbooks", "plugins", "roles"):
        shutil.copytree(ROOT / part, root / part)
    assert manifest.lifecycle_playbook(root, "deploy") == root / "playbooks" / "deploy.yml"
    assert manifest.lifecycle_playbook(root, "flush_restart") is None, "not a lifecycle playbook"
    # A role added with its manifest line and nothing regenerated.
    (root / "roles" / "hello" / "tasks").mkdir(parents=True)
    (root / "roles" / "hello" / "tasks" / "main.yml").write_text("---\n[]\n")
    text = (root / "meta" / "systems.yml").read_text()
    (root / "meta" / "systems.yml").write_text(text.replace(
        "\n# The order of the tables", "\n  - {name: hello, title: Hello, components: [{role: hello, groups: [hello]}]}"
        "\n# The order of the tables", 1))
    manifest.load.cache_clear()
    rendered = manifest.lifecycle_playbook(root, "deploy")
    assert rendered.is_relative_to(tmp_path / "cache" / "gymfleet" / "playbooks")
    plays = yaml.safe_load(rendered.read_text())
    assert plays[0]["ansible.builtin.import_playbook"] == str(root / "playbooks" / "preflight.yml")
    assert [p["hosts"] for p in plays if p.get("name") == "Hello"] == ["hello"]
    assert manifest.lifecycle_playbook(root, "deploy") == rendered, "the same manifest, the same file"
