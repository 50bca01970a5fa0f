"""The services engine lays out a component's files and Python environments in the same call as its services:
through the real action plugin and module, on localhost, with no service (so no systemd is needed)."""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def make_wheel(folder: Path, body: str) -> None:
    """A pure-Python wheel of gymfleet_probe 1.0 whose module holds body."""
    folder.mkdir(exist_ok=True)
    info = "gymfleet_probe-1.0.dist-info"
    with zipfile.ZipFile(folder / "gymfleet_probe-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("gymfleet_probe.py", body)
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: gymfleet_probe\nVersion: 1.0\n")
        wheel.writestr(f"{info}/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", f"gymfleet_probe.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")


def converge(tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    result = tmp_path / "result.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Lay out the component
      gymfleet.cluster.services:
        component: probe
        state: installed
        unit_dir: {tmp_path}/units
        layout:
          directories: [{{path: {tmp_path}/etc, mode: "0750"}}]
          files: [{{dest: {tmp_path}/etc/probe.conf, content: "port 1\\n"}}]
        environments:
          - path: {tmp_path}/venv
            python: {sys.executable}
            installer: pip
            system_packages: []
            packages: [gymfleet_probe==1.0]
            wheelhouse: {tmp_path}/wheelhouse
            wheelhouse_src: {tmp_path}/wheels
            versions_of: [gymfleet_probe, not-installed-here]
      register: laid_out
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{{{ laid_out | to_json }}}}"
        dest: {result}
        mode: "0644"
      changed_when: false
""")
    env = os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run([str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook),
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run, json.loads(result.read_text())


def test_layout_then_environment_from_the_controllers_wheelhouse_then_nothing_then_a_changed_wheel(tmp_path):
    (tmp_path / "units").mkdir()
    make_wheel(tmp_path / "wheels", "ANSWER = 1\n")
    _, first = converge(tmp_path)
    assert first["changed"] and first["layout"]["written"][0] == f"{tmp_path}/etc/probe.conf"
    assert (tmp_path / "wheelhouse" / "gymfleet_probe-1.0-py3-none-any.whl").is_file(), "copied by copy"
    (environment,) = first["environments"]
    assert environment["created"] and environment["installed"] and environment["path"] == f"{tmp_path}/venv"
    assert environment["versions"] == {"python": sys.version.split()[0], "gymfleet_probe": "1.0",
                                       "not-installed-here": None}
    record = (tmp_path / "venv" / "gymfleet-requirements.txt").read_text()
    assert "gymfleet_probe-1.0-py3-none-any.whl" in record, "the wheels' names are recorded with the pins"

    again, second = converge(tmp_path)
    assert re.search(r"localhost +: ok=2 +changed=0 ", again.stdout), again.stdout
    assert not second["environments"][0]["installed"] and second["layout"]["written"] == []

    make_wheel(tmp_path / "wheels", "ANSWER = 2\n")  # same name, new content: only the copy can tell
    _, third = converge(tmp_path)
    assert third["environments"][0]["installed"] and not third["environments"][0]["created"]
    probe = subprocess.run([f"{tmp_path}/venv/bin/python", "-c", "import gymfleet_probe; print(gymfleet_probe.ANSWER)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "2"


def test_a_wheelhouse_without_its_host_directory_is_one_line_naming_the_host(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - gymfleet.cluster.services:
        component: probe
        state: installed
        unit_dir: {tmp_path}
        environments: [{{path: {tmp_path}/venv, wheelhouse_src: {tmp_path}}}]
""")
    env = os.environ | {"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run([str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook),
                          "-e", f"ansible_python_interpreter={sys.executable}"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert run.returncode == 2
    assert f"host localhost: services: environment {tmp_path}/venv: wheelhouse_src needs wheelhouse" in run.stdout
