"""Every input a person can get wrong is refused in one line, before ansible-runner starts a playbook."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gymfleet import api, cli, runner
from gymfleet.errors import GymfleetError
from gymfleet.runner import (
    RunRequest,
    check_limit,
    load_inventory,
    parse_extravars,
    playbook_path,
    private_arguments,
    run_playbook,
    selected,
)
from gymfleet.status import STATUS_SKIP_TAGS

ROOT = Path(__file__).resolve().parents[2]
GYMFLEET = Path(sys.executable).parent / "gymfleet"
# Hosts that are never contacted: every case below fails before a connection is made.
INVENTORY = """\
all:
  children:
    cluster:
      hosts:
        node-a: {ansible_host: 127.0.0.1, ansible_port: 1}
        node-b: {ansible_host: 127.0.0.1, ansible_port: 1}
    redis:
      hosts:
        node-a: {}
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return path


def merged(options, **kwargs) -> dict:
    """The variables of -e options as ansible-playbook ends up with them: later ones win (files read as YAML)."""
    variables = {}
    for source in parse_extravars(options, **kwargs):
        variables.update(yaml.safe_load(source.read_text()) if isinstance(source, Path) else source)
    return variables


def test_extravars_as_ansible_playbook_reads_them():
    # KEY=VALUE keeps VALUE as text (ray_version=2.10 is not the number 2.1), several pairs in one -e, shell quoting;
    # a value that starts with { or [ is YAML or JSON; later options win.
    assert merged(["ray_version=2.10", "port=6380 name='a b' empty=", "c='[1, 2]'"]) == {
        "ray_version": "2.10", "port": "6380", "name": "a b", "empty": "", "c": "[1, 2]"}
    # A word without KEY= (which Ansible would keep as a variable named _raw_params) is refused.
    with pytest.raises(GymfleetError, match=r"^-e 'c=\[1, 2\]': expected KEY=VALUE pairs"):
        parse_extravars(["c=[1, 2]"])
    assert merged(['{"a": 1, "b": [true]}', "{c: yes}", "a=2"]) == {"a": "2", "b": [True], "c": True}
    with pytest.raises(GymfleetError, match=r"^-e '1x=2': expected KEY=VALUE pairs"):
        parse_extravars(["1x=2"])
    with pytest.raises(GymfleetError, match="expected KEY=VALUE pairs"):
        parse_extravars(["novalue"])
    with pytest.raises(GymfleetError, match=r"a list is not a set of variables"):
        parse_extravars(["[1, 2]"])
    with pytest.raises(GymfleetError, match=r"not valid YAML or JSON"):
        parse_extravars(["{a: [1"])
    with pytest.raises(GymfleetError, match=r"fix: write -e @\./vars.yml"):
        parse_extravars(["./vars.yml"])


def test_extravars_match_ansible_playbook_itself():
    """The same options given to Ansible's own reader give the same variables."""
    from ansible import context
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils import vars as ansible_vars

    options = ["ray_version=2.10", "port=6380 name='a b'", '{"a": 1, "b": [true]}', "a=2"]
    context.CLIARGS = context.CLIArgs({"extra_vars": tuple(options)})
    try:
        ansible_vars.load_extra_vars.extra_vars = None
        expected = ansible_vars.load_extra_vars(DataLoader())
    finally:
        ansible_vars.load_extra_vars.extra_vars = None
        context.CLIARGS = context.CLIArgs({})
    assert merged(options) == dict(expected)


def test_extravars_from_a_file(tmp_path):
    (tmp_path / "vars.yml").write_text("ray_version: '2.59.0'\n")
    # A file stays a file, which ansible-playbook reads, in its place among the other -e.
    assert parse_extravars(["a=1", f"@{tmp_path / 'vars.yml'}", "b=2"]) == [
        {"a": "1"}, tmp_path / "vars.yml", {"b": "2"}]
    (tmp_path / "list.yml").write_text("- 1\n")
    with pytest.raises(GymfleetError, match="must hold a mapping"):
        parse_extravars([f"@{tmp_path / 'list.yml'}"])
    with pytest.raises(GymfleetError, match="cannot read it"):
        parse_extravars([f"@{tmp_path / 'missing.yml'}"])
    (tmp_path / "bad.yml").write_text("a: [1\n")
    with pytest.raises(GymfleetError, match=r"cannot read it \(YAML parsing failed"):
        parse_extravars([f"@{tmp_path / 'bad.yml'}"])


def test_vaulted_extravars_need_a_vault_password(tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(b"pw"))])
    (tmp_path / "secrets.yml").write_bytes(vault.encrypt("token: s3cret\n"))
    with pytest.raises(GymfleetError, match=r"the file is vault-encrypted and no vault password was given; fix: add "
                                            r"--ask-vault-pass or --vault-password-file FILE$"):
        parse_extravars([f"@{tmp_path / 'secrets.yml'}"])
    assert parse_extravars([f"@{tmp_path / 'secrets.yml'}"], vaulted_ok=True) == [tmp_path / "secrets.yml"]
    # A value tagged !vault in a plain file is read (and decrypted later, by ansible-playbook).
    (tmp_path / "tagged.yml").write_text("token: !vault |\n  " + vault.encrypt("s3cret").decode().replace("\n", "\n  ")
                                         + "\n")
    assert parse_extravars([f"@{tmp_path / 'tagged.yml'}"]) == [tmp_path / "tagged.yml"]


def test_variables_and_passwords_reach_ansible_playbook_in_private_files(tmp_path):
    request = RunRequest(playbook="deploy", inventory=[], extravars={"api": "from-python"},
                         extravar_sources=[{"token": "s3cret"}, tmp_path / "mine.yml"], vault_password="pw",
                         vault_password_files=["~/vault.txt"], vault_ids=["prod@prompt"])
    arguments = private_arguments(request, tmp_path)
    assert "s3cret" not in " ".join(arguments) and "pw" not in arguments
    files = [Path(arguments[i + 1][1:]) for i, a in enumerate(arguments) if a == "-e"]
    assert files[2] == tmp_path / "mine.yml"
    assert [json.loads(f.read_text()) for f in files[:2]] == [{"api": "from-python"}, {"token": "s3cret"}]
    password = Path(arguments[arguments.index("--vault-password-file", arguments.index("--vault-id")) + 1])
    assert password.read_text() == "pw"
    for private in (*files[:2], password):
        assert private.stat().st_mode & 0o777 == 0o600
    assert arguments[arguments.index("--vault-password-file") + 1] == str(Path("~/vault.txt").expanduser())
    assert arguments[arguments.index("--vault-id") + 1] == "prod@prompt"


def test_unknown_playbook_lists_the_known_ones():
    with pytest.raises(GymfleetError, match=r"unknown playbook 'frob'; fix: use one of deploy, flush_restart, "):
        playbook_path(ROOT, "frob")
    assert playbook_path(ROOT, "flush-restart").name == "flush_restart.yml"


def test_inventory_missing_and_malformed(tmp_path):
    with pytest.raises(GymfleetError, match=r"inventory .*nope.yml: no such file or directory; fix: pass -i"):
        load_inventory([str(tmp_path / "nope.yml")], ROOT)
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    a: {x: 1\n")
    with pytest.raises(GymfleetError, match=r"cannot be parsed: YAML parsing failed: .* at .*bad.yml:\d+:\d+; fix:"):
        load_inventory([str(bad)], ROOT)
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  children:\n    cluster: {}\n")
    with pytest.raises(GymfleetError, match="it names no host"):
        load_inventory([str(empty)], ROOT)


def test_inventory_groups_and_limit(inventory):
    parsed = load_inventory([str(inventory)], ROOT)
    assert parsed.hosts == ["node-a", "node-b"]
    assert parsed.groups["redis"] == ["node-a"]
    check_limit(parsed, "redis:&node-a,node-b")
    check_limit(parsed, "node-*")
    with pytest.raises(GymfleetError, match=r"--limit node-c: no host or group named node-c .* \(hosts: node-a"):
        check_limit(parsed, "node-c")


def test_a_static_inventory_is_parsed_again_only_when_a_file_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.yml").write_text(INVENTORY)
    (folder / "group_vars" / "all.yml").write_text("redis_port: 6379\n")
    parses = []
    real = runner._parse_in_process
    monkeypatch.setattr(runner, "_parse_in_process", lambda *args: parses.append(args) or real(*args))

    first = load_inventory([str(folder)], ROOT)
    assert load_inventory([str(folder)], ROOT) == first and len(parses) == 1, "the second run reads the cache"
    (folder / "hosts.yml").write_text(INVENTORY.replace("node-a: {}", "node-b: {}"))
    assert load_inventory([str(folder)], ROOT).groups["redis"] == ["node-b"] and len(parses) == 2

    # A plugin's configuration or a script may answer otherwise with the same files: parsed every time.
    plugin = tmp_path / "slurm.yml"
    plugin.write_text("plugin: gymfleet.cluster.slurm_allocation\n")
    script = tmp_path / "hosts.sh"
    script.write_text("#!/bin/sh\necho '{\"cluster\": {\"hosts\": [\"node-a\"]}}'\n")
    script.chmod(0o755)
    assert runner._static_fingerprint([str(plugin)], ROOT) is None
    assert runner._static_fingerprint([str(script)], ROOT) is None
    assert runner._static_fingerprint([str(folder)], ROOT) is not None


def test_unknown_tag_is_refused_with_the_known_ones(inventory):
    with pytest.raises(GymfleetError, match=r"--tags nosuch: no task of deploy has that tag; fix: use one of .*redis"):
        run_playbook(RunRequest(playbook="deploy", inventory=[str(inventory)], tags=["redis", "nosuch"]), root=ROOT)


@pytest.mark.parametrize("args, message", [
    (["deploy", "-i", "/nonexistent/inventory.yml"], "no such file or directory"),
    (["run", "frob"], "unknown playbook 'frob'"),
    (["stop", "--limit", "node-c"], "no host or group named node-c"),
    (["restart", "--tags", "nosuch"], "--tags nosuch"),
    (["deploy", "-e", "=x"], "expected KEY=VALUE"),
    (["deploy", "-e", "a=1 stray"], "expected KEY=VALUE"),
    (["stop"], "stop would stop every service gymfleet runs on every host of"),
    (["stop", "--tags", "ray"], "stop would stop every service gymfleet runs (tasks tagged ray) on every host of"),
    (["flush-restart", "--limit", "node-a"], "there is no terminal to ask on; fix: add --yes"),
    (["run", "stop"], "fix: add --yes"),
])
def test_cli_errors_are_one_line(inventory, args, message):
    if "-i" not in args:
        args = [*args, "-i", str(inventory)]
    proc = subprocess.run([str(GYMFLEET), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 5, "refused input exits as ansible-playbook's bad option does"
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gymfleet: error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_tags_of_a_playbook_without_tags_say_so(inventory):
    with pytest.raises(GymfleetError, match=r"^--tags ray: status has no tags .*; fix: drop --tags, and pick hosts "
                                            r"with --limit$"):
        run_playbook(RunRequest(playbook="status", inventory=[str(inventory)], tags=["ray"],
                                skip_tags=list(STATUS_SKIP_TAGS)), root=ROOT)


@pytest.mark.parametrize("value", ["-1", "0", "x"])
def test_watch_takes_a_positive_number_of_seconds(value):
    proc = subprocess.run([str(GYMFLEET), "status", "--watch", value], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 5 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "--watch: " in proc.stderr
    assert "fix: see `gymfleet status --help`" in proc.stderr


@pytest.mark.parametrize("answer, runs", [("y", True), ("yes", True), ("", False), ("n", False)])
def test_stop_asks_on_a_terminal(monkeypatch, inventory, capsys, answer, runs):
    asked, ran = [], []
    monkeypatch.setattr(cli.sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
    monkeypatch.setattr(runner, "run_playbook", lambda request, **_: ran.append(request) or (_ for _ in ()).throw(
        GymfleetError("ran")))
    assert cli.main(["stop", "-i", str(inventory), "--limit", "node-a"]) == 5
    assert asked == [f"gymfleet stop: stop every service gymfleet runs on hosts node-a of {inventory}? [y/N] "]
    assert bool(ran) == runs
    if not runs:
        assert capsys.readouterr().err == ("gymfleet: error: stop: not confirmed, nothing was done; fix: answer y, "
                                           "or add --yes\n")


def test_yes_and_check_mode_do_not_ask(monkeypatch, inventory):
    ran = []
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked"))
    monkeypatch.setattr(runner, "run_playbook", lambda request, **_: ran.append(request) or (_ for _ in ()).throw(
        GymfleetError("ran")))
    cli.main(["stop", "-i", str(inventory), "--yes"])
    cli.main(["flush-restart", "-i", str(inventory), "--check"])
    assert [request.playbook for request in ran] == ["stop", "flush-restart"]


def test_ansible_playbooks_own_flags_reach_the_run(monkeypatch, inventory):
    ran = []
    monkeypatch.setattr(runner, "run_playbook", lambda request, **_: ran.append(request) or (_ for _ in ()).throw(
        GymfleetError("ran")))
    cli.main(["deploy", "-i", str(inventory), "-l", "node-a", "-t", "redis,ray", "--skip-tags", "ray", "-C", "-D",
              "-f", "7", "-e", "a=1", "-vvv", "--vault-password-file", "pw.txt", "--vault-id", "dev@prompt"])
    request = ran[0]
    assert (request.limit, request.tags, request.skip_tags, request.check, request.diff, request.forks,
            request.extravar_sources, request.verbosity, request.vault_password_files, request.vault_ids) == (
        "node-a", ["redis", "ray"], ["ray"], True, True, 7, [{"a": "1"}], 3, ["pw.txt"], ["dev@prompt"])
    cli.main(["status", "-i", str(inventory), "--skip-tags", "x"])
    assert ran[1].skip_tags == ["x", *STATUS_SKIP_TAGS], "status keeps skipping its own verdict"


def test_version_names_gymfleet_ansible_core_and_python():
    from ansible.release import __version__ as ansible_core

    from gymfleet import __version__

    proc = subprocess.run([str(GYMFLEET), "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith(f"gymfleet {__version__} (ansible-core {ansible_core}, Python 3.")


@pytest.mark.parametrize("task_tags, tags, runs", [
    (set(), [], True), ({"never"}, [], False), ({"redis"}, ["redis"], True), ({"ray"}, ["redis"], False),
    ({"always"}, ["redis"], True), ({"never", "debug"}, ["debug"], True), (set(), ["untagged"], True),
    ({"ray"}, ["tagged"], True), ({"ray"}, ["all"], True),
])
def test_which_tasks_a_tag_selects(task_tags, tags, runs):
    assert selected(task_tags, tags) is runs


@pytest.mark.parametrize("task_tags, tags, skip_tags, runs", [
    ({"fail_when_down"}, [], ["fail_when_down"], False), (set(), [], ["fail_when_down"], True),
    ({"always", "ray"}, ["redis"], ["ray"], False), ({"ray"}, ["ray"], ["redis"], True),
])
def test_skip_tags_win_over_tags(task_tags, tags, skip_tags, runs):
    assert selected(task_tags, tags, skip_tags) is runs


def test_status_through_the_api_and_the_cli_skips_the_playbooks_own_verdict(monkeypatch, inventory):
    """The playbook fails a host per component down; gymfleet judges from the report, so the task is skipped by
    tag (no cost on any host) rather than by a condition evaluated on every host."""
    status = yaml.safe_load((ROOT / "playbooks" / "status.yml").read_text())
    tagged = [task["name"] for task in status[0]["tasks"] if set(task.get("tags", [])) & set(STATUS_SKIP_TAGS)]
    assert tagged == ["Fail when a component is down"]

    class Asked(Exception):
        pass

    def run_playbook(request, **_):
        raise Asked(request)

    monkeypatch.setattr(runner, "run_playbook", run_playbook)
    with pytest.raises(Asked) as through_api:
        api.Cluster(str(inventory)).status()
    with pytest.raises(Asked) as through_cli:
        cli.main(["status", "-i", str(inventory)])
    for asked in (through_api, through_cli):
        request = asked.value.args[0]
        assert request.skip_tags == ["fail_when_down"] and "gymfleet_status_fail_when_down" not in request.extravars


@pytest.mark.parametrize(("status", "failures", "code"), [
    ("successful", [], 0),
    ("canceled", [], 99),
    ("failed", [], 1),
    ("failed", [("a", False)], 2),
    ("failed", [("a", False), ("b", True)], 4),
    ("failed", [("b", True)], 4),
])
def test_exit_codes_are_ansible_playbooks(status, failures, code):
    from gymfleet.events import Failure, RunResult

    result = RunResult(playbook="deploy", status=status, rc=0, check=False, elapsed=1.0, tasks=1, hosts={},
                       failures=[Failure(host, "t", "p", "m", unreachable) for host, unreachable in failures])
    assert cli._exit_code(result) == code


def test_start_is_a_command_like_the_apis_start(monkeypatch, inventory):
    from gymfleet.api import Cluster

    ran = []

    def record(request, **_):
        ran.append(request)
        raise GymfleetError("ran")

    monkeypatch.setattr(runner, "run_playbook", record)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked: starting changes nothing installed"))
    cli.main(["start", "-i", str(inventory), "-l", "node-a", "-t", "redis", "-f", "7", "-vv"])
    with pytest.raises(GymfleetError):
        Cluster(str(inventory), forks=7, verbosity=2).start(limit="node-a", tags=["redis"])
    # The CLI is a layer over the API: the same options make the same request.
    assert ran[0] == ran[1] and (ran[0].playbook, ran[0].limit, ran[0].forks) == ("start", "node-a", 7)
