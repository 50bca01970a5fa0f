"""Adding a system is one role of at most 6 files and one line of meta/systems.yml: a copy of the collection with a
small HTTP server added that way is deployed, judged, stopped, started and restarted, and its logs read, on the
lab. Its port is declared in the role's services alone: the unit carries it, status knows it, and the firewall
refuses it to a non-member like every other port."""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import LAB, ROOT, VENV_BIN, answering

NODE, OTHER = f"{LAB}-node1", f"{LAB}-node2"
PORT = 18080
ROLE = {
    "defaults/main.yml": f"""---
# The port the server listens on, on every interface.
hello_http_port: {PORT}
""",
    "meta/argument_specs.yml": """---
argument_specs:
  main:
    short_description: A small HTTP server, the example of a system added as data.
    options:
      hello_http_port:
        type: int
        description: The port it listens on.
""",
    "vars/main.yml": """---
# The declaration: the unit, the port (which status and the firewall's refusal cover), the health probe and the
# entry points all come from it.
__hello_http_services:
  - name: hello-http
    description: Hello, HTTP on port {{ hello_http_port }}
    argv: [/usr/bin/python3, -m, http.server, --bind, 0.0.0.0, "{{ hello_http_port }}", --directory, /usr/share/doc]
    user: nobody
    group: nogroup
    ports: ["{{ hello_http_port }}"]
    health: {http: "http://127.0.0.1:{{ hello_http_port }}/"}
""",
    "tasks/main.yml": """---
- name: Run the server
  gymfleet.cluster.services:
    component: hello_http
    services: "{{ __hello_http_services }}"
""",
}
MANIFEST_LINE = ("  - {name: hello, title: Hello, components: [{role: hello_http, title: Hello servers, "
                 "groups: [hello]}]}\n")


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """A copy of this checkout with the role and the manifest line added, and its playbooks generated."""
    root = tmp_path_factory.mktemp("collection") / "gymfleet"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, root / name
        if source.is_symlink() or source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    for name, text in ROLE.items():
        (root / "roles" / "hello_http" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "roles" / "hello_http" / name).write_text(text)
    manifest = root / "meta" / "systems.yml"
    text = manifest.read_text()
    anchor = "\n# The order of the tables"
    assert anchor in text
    manifest.write_text(text.replace(anchor, "\n" + MANIFEST_LINE + anchor, 1))
    # Nothing is regenerated: the gymfleet command renders the lifecycle playbooks from the manifest it runs with.
    return root


def run(collection, *args, timeout=900):
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}", "GYMFLEET_HOME": str(collection)}
    return subprocess.run([str(VENV_BIN / "gymfleet"), *args], capture_output=True, text=True, cwd=collection,
                          env=env, timeout=timeout)


def on(node, *argv):
    return subprocess.run(["docker", "exec", node, *argv], capture_output=True, text=True)


def main_pid():
    return on(NODE, "systemctl", "show", "-p", "MainPID", "--value", "hello-http.service").stdout.strip()


def test_a_system_added_as_one_small_role_runs_its_whole_lifecycle(deployed, collection, tmp_path):  # noqa: F811
    role_files = [path for path in (collection / "roles" / "hello_http").rglob("*") if path.is_file()]
    assert len(role_files) <= 6, role_files
    assert "hello" not in (collection / "playbooks" / "deploy.yml").read_text(), "nothing was regenerated"
    extra = tmp_path / "hello.yml"
    extra.write_text(f"all:\n  children:\n    hello:\n      hosts:\n        {NODE}: {{}}\n")
    inventory = ["-i", str(deployed), "-i", str(extra)]

    deploy = run(collection, "deploy", *inventory, "--plain")
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    address = on(NODE, "sh", "-c", "hostname -I").stdout.split()[0]
    assert on(NODE, "grep", f"X-Gymfleet-Ports={PORT}", "/etc/systemd/system/hello-http.service").returncode == 0

    status = run(collection, "status", *inventory, "--json")
    report = json.loads(status.stdout)
    rows = {(row["host"], row["component"]): row for system in report["systems"].values()
            for row in system["components"]}
    assert rows[(NODE, "Hello servers")]["state"] == "up", rows[(NODE, "Hello servers")]
    assert rows[(NODE, "ports")]["state"] == "up", rows[(NODE, "ports")]["detail"]
    assert report["systems"]["hello"]["title"] == "Hello"

    assert answering(address, [PORT], OTHER) == {PORT}, "a member reaches it"
    assert answering(address, [PORT]) == set(), "a non-member is refused"

    logs = run(collection, "logs", "hello", *inventory, "--since", "10m")
    assert logs.returncode == 0 and '"GET / HTTP/1.1" 200' in logs.stdout, logs.stdout[-2000:] + logs.stderr

    stop = run(collection, "stop", *inventory, "--plain", "--yes", "-t", "hello")
    assert stop.returncode == 0, stop.stdout[-3000:]
    assert on(NODE, "systemctl", "is-active", "hello-http.service").stdout.strip() == "inactive"
    assert f":{PORT} " not in on(NODE, "ss", "-ltnH").stdout, "stop leaves nothing listening"
    stopped = json.loads(run(collection, "status", *inventory, "--json").stdout)
    assert [row["state"] for row in stopped["systems"]["hello"]["components"]] == ["DOWN"]

    start = run(collection, "start", *inventory, "--plain", "-t", "hello")
    assert start.returncode == 0, start.stdout[-3000:]
    assert on(NODE, "systemctl", "is-active", "hello-http.service").stdout.strip() == "active"
    assert answering(address, [PORT], OTHER) == {PORT}, "start waited for its health probe"

    before = main_pid()
    restart = run(collection, "restart", *inventory, "--plain", "-t", "hello")
    assert restart.returncode == 0, restart.stdout[-3000:]
    for _ in range(50):
        if main_pid() not in ("0", before):
            break
        time.sleep(0.2)
    assert main_pid() not in ("0", before), "a new process"
    run(collection, "stop", *inventory, "--plain", "--yes", "-t", "hello")
