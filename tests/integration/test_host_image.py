"""host_image against the real Docker engine the lab runs on: an image of the host's Python that runs, the same
files give the same image, and a change gives a new tag while the old one (ours) goes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "host_image.py"
NAME = "gymfleet-itest/host-image"


def run_module(tmp_path, **args) -> dict:
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": NAME, **args}}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


def docker(*args) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture()
def clean_images():
    yield
    for ref in docker("image", "ls", "--filter", f"reference={NAME}", "--format", "{{.Repository}}:{{.Tag}}").split():
        docker("image", "rm", "--force", ref)


@pytest.mark.usefixtures("clean_images")
def test_an_image_of_the_hosts_python_runs_and_is_rebuilt_only_when_a_file_changes(tmp_path):
    program = tmp_path / "job" / "hello.py"
    program.parent.mkdir()
    program.write_text("import json, ssl\nprint(json.dumps({'ssl': ssl.OPENSSL_VERSION != ''}))\n")
    args = {"python": "/usr/bin/python3", "paths": [str(program.parent)], "exclude": ["*/__pycache__"]}

    planned = run_module(tmp_path, **args, _ansible_check_mode=True)
    assert planned["changed"] and not docker("image", "ls", "--quiet", NAME).strip()

    first = run_module(tmp_path, **args)
    assert first["changed"] and first["image"] == f"{NAME}:{first['tag']}" and first["files"] > 100
    out = docker("run", "--rm", first["image"], "/usr/bin/python3", str(program))
    assert json.loads(out) == {"ssl": True}
    assert docker("image", "inspect", "--format", "{{index .Config.Labels \"gymfleet.built-by\"}}",
                  first["image"]).strip() == "host_image"

    again = run_module(tmp_path, **args)
    assert not again["changed"] and again["image"] == first["image"]

    program.write_text("print('changed')\n")
    changed = run_module(tmp_path, **args)
    assert changed["changed"] and changed["tag"] != first["tag"] and changed["removed"] == [first["image"]]
    assert docker("image", "ls", "--format", "{{.Tag}}", NAME).split() == [changed["tag"]]


def test_a_missing_path_is_one_line_naming_it(tmp_path):
    result = run_module(tmp_path, paths=[str(tmp_path / "absent")])
    assert result["failed"] and result["msg"].startswith(f"{tmp_path}/absent: not on this host; fix:")
