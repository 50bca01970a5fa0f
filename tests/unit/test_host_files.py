"""host_files: the module on this machine's file system, and the action plugin through a real ansible run on
localhost (templates, controller trees, secrets)."""

import base64
import grp
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils import debian_packages
from ansible_collections.gymfleet.cluster.plugins.modules import host_files

from .modhelper import run_module

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def files(**args):
    return run_module(host_files.main, args)


def test_creates_then_changes_nothing_and_corrects_drift(tmp_path):
    args = {"directories": [{"path": str(tmp_path / "a" / "b"), "mode": "0750"}],
            "files": [{"dest": str(tmp_path / "a" / "b" / "conf"), "content": "x = 1\n", "mode": "0640"},
                      {"dest": str(tmp_path / "a" / "blob"), "content_base64": base64.b64encode(b"\0\1").decode()}]}
    first = files(**args, _ansible_diff=True)
    assert first["changed"] and first["created"] == [str(tmp_path / "a" / "b")]
    assert sorted(first["written"]) == sorted([str(tmp_path / "a" / "b" / "conf"), str(tmp_path / "a" / "blob")])
    assert (tmp_path / "a" / "b" / "conf").read_text() == "x = 1\n"
    assert oct((tmp_path / "a" / "b" / "conf").stat().st_mode & 0o777) == "0o640"
    assert (tmp_path / "a" / "blob").read_bytes() == b"\0\1"
    assert {d["after"] for d in first["diff"]} == {"x = 1\n", "(binary, changed)\n"}
    assert files(**args)["changed"] is False
    os.chmod(tmp_path / "a" / "b", 0o755)
    (tmp_path / "a" / "b" / "conf").write_text("x = 2\n")
    again = files(**args)
    assert again["created"] == [str(tmp_path / "a" / "b")] and again["written"] == [str(tmp_path / "a" / "b" / "conf")]
    assert (tmp_path / "a" / "b" / "conf").read_text() == "x = 1\n"


def test_check_mode_reports_and_writes_nothing(tmp_path):
    result = files(directories=[{"path": str(tmp_path / "new")}],
                   files=[{"dest": str(tmp_path / "f"), "content": "y"}], _ansible_check_mode=True)
    assert result["changed"] and not (tmp_path / "new").exists() and not (tmp_path / "f").exists()


def test_absent_removes_what_is_there_once_and_refuses_a_directory(tmp_path):
    (tmp_path / "token").write_text("old")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    wanted = [str(tmp_path / "token"), str(tmp_path / "dangling"), str(tmp_path / "never-there")]
    checked = files(absent=wanted, _ansible_check_mode=True, _ansible_diff=True)
    assert checked["changed"] and checked["removed"] == wanted[:2] and (tmp_path / "token").exists()
    assert [d["after"] for d in checked["diff"]] == ["absent\n", "absent\n"]
    first = files(absent=wanted)
    assert first["removed"] == wanted[:2] and not os.path.lexists(tmp_path / "dangling")
    assert not (tmp_path / "token").exists()
    assert files(absent=wanted)["changed"] is False
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep").write_text("theirs")
    refused = files(absent=[str(tmp_path / "data")])
    assert refused["failed"] and "is a directory; fix: list only files there" in refused["msg"]
    assert (tmp_path / "data" / "keep").read_text() == "theirs"


def test_a_secret_is_never_shown(tmp_path):
    result = files(secret_files=[{"dest": str(tmp_path / "s"), "content": "hunter2-very-secret"}], _ansible_diff=True)
    assert result["changed"] and "hunter2-very-secret" not in json.dumps(result)
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o600"


def test_a_file_replaces_its_destination_only_when_the_validator_accepts_it(tmp_path):
    conf = tmp_path / "conf.json"
    # The validator sees the candidate with the destination's extension, and real JSON.
    validate = f"/bin/sh -c 'test \"${{1##*.}}\" = json && {sys.executable} -m json.tool \"$1\"' sh %s"
    assert files(files=[{"dest": str(conf), "content": '{"a": 1}', "validate": validate}])["written"] == [str(conf)]
    refused = files(files=[{"dest": str(conf), "content": '{"a": ', "validate": validate}])
    assert refused["failed"] and refused["written"] == []
    assert refused["rejected"]["dest"] == str(conf) and refused["rejected"]["rc"] != 0
    assert "Expecting value" in refused["rejected"]["stderr"] and "left as it was" in refused["msg"]
    assert conf.read_text() == '{"a": 1}' and sorted(p.name for p in tmp_path.iterdir()) == ["conf.json"]
    # The same content is not validated again (a no-op costs no validator run).
    assert files(files=[{"dest": str(conf), "content": '{"a": 1}', "validate": "/bin/false %s"}])["changed"] is False
    assert "has no %s" in files(files=[{"dest": str(conf), "content": '{"a": 1}', "validate": "/bin/true"}])["msg"]


def test_bad_input_is_one_clear_line(tmp_path):
    (tmp_path / "plain").write_text("")
    assert "is not a directory" in files(directories=[{"path": str(tmp_path / "plain")}])["msg"]
    assert "mode 'rw' is not octal" in files(files=[{"dest": str(tmp_path / "f"), "content": "", "mode": "rw"}])["msg"]
    missing = files(files=[{"dest": str(tmp_path / "f"), "content": "", "owner": "no-such-user-here"}])
    assert "no such user or group" in missing["msg"]
    assert "declare it in directories" in files(files=[{"dest": str(tmp_path / "x" / "f"), "content": ""}])["msg"]


def test_the_action_renders_templates_and_copies_trees_in_one_call(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("port {{ item.port }} on {{ inventory_hostname }}\n")
    tree = tmp_path / "tree"
    (tree / "pkg" / "__pycache__").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text("print(1)\n")
    (tree / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - gymfleet.cluster.host_files:
        files:
          - {{dest: {out}/t.conf, template: t.j2, vars: {{item: {{port: 6379}}}}}}
          - {{dest: {out}/tree, src: {tree}/}}
          - {{dest: {out}/s, content: not-for-your-eyes-1234, secret: true}}
""")
    env = os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    command = [str(ANSIBLE) + "-playbook", "-i", "localhost,", "-c", "local", "--diff", str(playbook),
               "-e", f"ansible_python_interpreter={sys.executable}"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (out / "t.conf").read_text() == "port 6379 on localhost\n"
    assert (out / "tree" / "pkg" / "mod.py").read_text() == "print(1)\n"
    assert not (out / "tree" / "pkg" / "__pycache__").exists()
    assert os.access(out / "tree" / "run.sh", os.X_OK) and not os.access(out / "tree" / "pkg" / "mod.py", os.X_OK)
    assert "not-for-your-eyes-1234" not in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert second.returncode == 0 and re.search(r"localhost +: ok=1 +changed=0 ", second.stdout), second.stdout


def test_on_the_controller_the_action_lays_out_in_its_own_process_with_the_modules_contract(tmp_path):
    """A local target without become (a connection file for the user) is laid out by the action itself: no module
    payload is built or run, and check mode, diff, a validator's refusal and bad arguments behave as the module's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.conf").write_text("old\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Checked
      gymfleet.cluster.host_files:
        files: [{{dest: {out}/new.conf, content: "port 1\\n"}}]
      check_mode: true
      register: checked
    - name: Written
      gymfleet.cluster.host_files:
        files: [{{dest: {out}/new.conf, content: "port 1\\n"}}]
        absent: [{out}/old.conf]
      register: written
    - name: Refused
      gymfleet.cluster.host_files:
        files: [{{dest: {out}/new.conf, content: "port 2\\n", validate: "grep -q never %s"}}]
      register: refused
      ignore_errors: true
    - name: Misspelled
      gymfleet.cluster.host_files:
        filez: []
      register: misspelled
      ignore_errors: true
    - name: Keep the results
      ansible.builtin.copy:
        content: >-
          {{{{ {{'checked': checked, 'written': written, 'refused': refused, 'misspelled': misspelled}} | to_json }}}}
        dest: {tmp_path}/results.json
        mode: "0644"
""")
    env = os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run([str(ANSIBLE) + "-playbook", "-i", "localhost,", "-c", "local", "--diff", "-vvv",
                           str(playbook), "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "AnsiballZ_host_files" not in done.stdout and "host_files.py" not in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["checked"]["changed"] and results["checked"]["written"] == [f"{out}/new.conf"]
    assert results["checked"]["diff"][0]["after"] == "port 1\n"
    assert results["written"]["removed"] == [f"{out}/old.conf"] and not (out / "old.conf").exists()
    assert (out / "new.conf").read_text() == "port 1\n"
    assert results["refused"]["failed"] and results["refused"]["rejected"]["rc"] == 1
    assert (out / "new.conf").read_text() == "port 1\n"
    assert results["misspelled"]["failed"] and "filez" in results["misspelled"]["msg"]


def test_redis_layout_marks_only_the_secrets_secret():
    from ansible_collections.gymfleet.cluster.plugins.filter.redis import redis_layout

    layout = redis_layout([{"port": 6379}, {"port": "6380", "save": []}], "/etc/redis", "/var/lib/redis")
    assert [d["path"] for d in layout["directories"]] == ["/var/lib/redis/6379", "/var/lib/redis/6380"]
    assert [(f["dest"], f.get("secret", False)) for f in layout["files"]] == [
        ("/etc/redis/redis-6379.secrets.conf", True), ("/etc/redis/redis-6379.conf", False),
        ("/etc/redis/redis-6380.secrets.conf", True), ("/etc/redis/redis-6380.conf", False)]
    assert layout["files"][3]["vars"] == {"item": {"port": "6380", "save": []}}


@pytest.fixture
def service_user():
    """A user name no one has here; whatever the test made of it is removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    name = f"gf-test-{os.getpid()}"
    yield name
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def test_users_are_created_before_their_files_then_corrected_then_left_alone(tmp_path, service_user):
    home = str(tmp_path / "home")
    args = {"users": [{"name": service_user, "home": home}],
            "directories": [{"path": home, "owner": service_user, "mode": "0750"}],
            "files": [{"dest": f"{home}/conf", "content": "x", "owner": service_user}]}
    check = files(**args, _ansible_check_mode=True)
    assert check["changed"] and check["users"] == [service_user]
    with pytest.raises(KeyError):
        pwd.getpwnam(service_user)  # check mode created nobody
    first = files(**args)
    entry = pwd.getpwnam(service_user)
    assert first["users"] == [service_user] and entry.pw_dir == home and entry.pw_shell == "/usr/sbin/nologin"
    assert entry.pw_uid < 1000 and grp.getgrgid(entry.pw_gid).gr_name == service_user  # a system user, own group
    assert (tmp_path / "home" / "conf").stat().st_uid == entry.pw_uid
    again = files(**args)
    assert (again["changed"], again["users"], again["created"], again["written"]) == (False, [], [], [])
    subprocess.run(["usermod", "--shell", "/bin/sh", service_user], check=True)
    assert files(**args)["users"] == [service_user] and pwd.getpwnam(service_user).pw_shell == "/usr/sbin/nologin"


def test_a_user_joins_an_existing_group_of_its_name(service_user, tmp_path):
    subprocess.run(["groupadd", "--system", service_user], check=True)
    result = files(users=[{"name": service_user, "home": str(tmp_path)}])
    assert result["users"] == [service_user]
    assert grp.getgrgid(pwd.getpwnam(service_user).pw_gid).gr_name == service_user


def test_a_user_that_cannot_be_made_is_one_clear_line(tmp_path):
    result = files(users=[{"name": "bad name:with colon", "home": str(tmp_path)}])
    assert result["failed"] and result["msg"].startswith("user bad name:with colon: useradd failed:")


class FakeApt:
    """Stands for dpkg-query and apt-get: dpkg knows `installed`; apt-get installs what it is asked for."""

    def __init__(self, installed, fail=None):
        self.installed, self.fail, self.calls = set(installed), fail, []

    def __call__(self, argv, environ_update=None):
        self.calls.append(argv)
        if argv[0] == "dpkg-query":
            # Like dpkg's ${Package}: the name without its architecture.
            known = [name.split(":")[0] for name in argv[4:] if name.split(":")[0] in self.installed]
            return (0 if len(known) == len(argv[4:]) else 1), "".join(f"{name} ii \n" for name in known), ""
        assert environ_update == {"DEBIAN_FRONTEND": "noninteractive"}
        if argv[:2] == self.fail:
            return 100, "", "E: Unable to locate package nope\n"
        if argv[1] == "install":
            self.installed |= set(argv[4:])
        return 0, "", ""


def test_packages_install_only_what_dpkg_lacks_and_fail_as_one_line():
    apt = FakeApt({"redis-server"})
    assert debian_packages.missing_packages(["redis-server", "libgomp1"], apt) == ["libgomp1"]
    debian_packages.install_packages(["libgomp1"], apt)
    assert apt.calls[1:] == [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "libgomp1"]]
    assert debian_packages.missing_packages(["redis-server", "libgomp1:amd64"], apt) == []
    assert debian_packages.missing_packages([], apt) == [] and len(apt.calls) == 4  # nothing asked, dpkg not run
    with pytest.raises(debian_packages.PackageError,
                       match=r"apt-get install failed: E: Unable to locate package nope; fix"):
        debian_packages.install_packages(["nope"], FakeApt(set(), fail=["apt-get", "install"]))
    with pytest.raises(debian_packages.PackageError, match="names only"):
        debian_packages.missing_packages(["redis-server=5:7.0"], apt)


def test_packages_against_this_machines_dpkg():
    """The real dpkg-query: a package this machine has (dpkg itself) and one no archive has."""
    result = files(packages=["dpkg", "gymfleet-no-such-package"], _ansible_check_mode=True)
    assert result["changed"] and result["installed"] == ["gymfleet-no-such-package"]
    assert files(packages=["dpkg"])["changed"] is False
