"""The Python API and the CLI over ansible-runner, running the collection's real playbooks on the lab."""

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from conftest import ROOT, VENV_BIN, Lines, cli, own_processes
from gymfleet import Cluster, GymfleetError

SCHEMAS = ROOT / "src" / "gymfleet" / "schemas"


def validate(document, name):
    registry = Registry().with_resources(
        [(path.name, Resource.from_contents(json.loads(path.read_text()))) for path in SCHEMAS.glob("*.json")])
    Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry).validate(document)


def test_rerun_changes_nothing_and_check_mode_is_reported(deployed):
    result = Cluster(deployed).deploy(check=True, tags=["redis"])
    assert result.ok and result.check and result.changed == 0
    assert all(host.status == "ok" for host in result.hosts.values())
    validate(result.to_dict(), "run.schema.json")


def test_status_json_fits_the_schema(deployed):
    proc = cli("status", "-i", str(deployed), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    document = json.loads(proc.stdout)
    validate(document, "status.schema.json")
    assert document["healthy"] is True
    assert document["systems"]["redis"]["summary"]["reachable"] == 2
    assert {row["host"] for row in document["systems"]["redis"]["components"]} == {"itest-node1", "itest-node2"}
    assert "python_env" in document["systems"]
    # Each host's firewall chain, read with the real iptables against its jump and the rules the deploy saved.
    firewall = document["systems"]["firewall"]["components"]
    assert {(row["host"], row["state"]) for row in firewall} == {("itest-node1", "up"), ("itest-node2", "up")}


def test_status_table_and_a_stopped_redis(deployed):
    report = Cluster(deployed).status()
    assert report.healthy and "Redis: reachable 2/2" in report.render()
    subprocess.run(["docker", "exec", "itest-node2", "systemctl", "stop", "redis-server@6379"], check=True)
    try:
        proc = cli("status", "-i", str(deployed), "--plain")
        assert proc.returncode == 1
        assert "Redis: reachable 1/2" in proc.stdout
        assert proc.stdout.rstrip().splitlines()[-1] == "NOT healthy: itest-node2 redis :6379"
        # Plain progress went to stderr, one line per task, no control characters.
        assert "\x1b" not in proc.stderr and "[1/" in proc.stderr
    finally:
        subprocess.run(["docker", "exec", "itest-node2", "systemctl", "start", "redis-server@6379"], check=True)


def test_a_failing_task_names_host_task_and_message(deployed):
    proc = cli("preflight", "-i", str(deployed), "--plain", "-e", '{"redis_instances": [{"port": 99999}]}',
               "--json")
    assert proc.returncode == 2, "a host failed, as ansible-playbook says it"
    document = json.loads(proc.stdout)
    validate(document, "run.schema.json")
    assert document["status"] == "failed" and document["failures"]
    failure = document["failures"][0]
    assert failure["host"].startswith("itest-node") and failure["task"] and "redis_instances" in failure["message"]
    assert f"FAILED {failure['host']} | {failure['task']} |" in proc.stderr
    # Kept: the same failure again, without running anything, and Ansible's own output of that run.
    shown = cli("runs", "show", document["run_id"])
    assert shown.returncode == 0 and f"FAILED {failure['host']} | {failure['task']} |" in shown.stdout
    output = cli("runs", "show", document["run_id"], "--output")
    assert "PLAY RECAP" in output.stdout and "fatal: [itest-node" in output.stdout


def ghost_inventory(tmp_path):
    """A cluster member at an address of the lab's own network that no container has: nothing outside the
    lab is contacted."""
    address = json.loads(subprocess.run(["docker", "network", "inspect", "gymfleet-itest"], capture_output=True,
                                        text=True, check=True).stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    missing = address.rsplit(".", 1)[0] + ".250"
    extra = tmp_path / "extra.yml"
    extra.write_text(f"all:\n  children:\n    cluster:\n      hosts:\n        itest-ghost:\n"
                     f"          ansible_host: {missing}\n          ansible_ssh_timeout: 5\n")
    return extra


def test_status_with_a_host_out_of_reach_asks_the_others(deployed, tmp_path):
    proc = cli("status", "-i", str(deployed), "-i", str(ghost_inventory(tmp_path)), "--json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    document = json.loads(proc.stdout)
    validate(document, "status.schema.json")
    assert document["healthy"] is False and document["unreachable"] == ["itest-ghost"]
    assert [(row["host"], row["component"], row["state"]) for row in document["systems"]["cluster"]["components"]] \
        == [("itest-ghost", "host", "DOWN")]
    # The reachable hosts were still asked, each about everything it runs.
    assert document["systems"]["redis"]["summary"]["reachable"] == 2
    assert {row["host"] for row in document["systems"]["python_env"]["components"]} == {"itest-node1", "itest-node2"}


def test_an_unreachable_host(deployed, tmp_path):
    extra = ghost_inventory(tmp_path)
    proc = cli("preflight", "-i", str(deployed), "-i", str(extra), "--plain")
    assert proc.returncode == 4, "a host unreachable, as ansible-playbook says it"
    assert "UNREACHABLE itest-ghost | " in proc.stderr
    assert "1 unreachable" in proc.stdout and "fix for itest-ghost: check that the host is up" in proc.stdout
    result = Cluster([deployed, extra]).preflight()
    assert [failure.host for failure in result.failures if failure.unreachable] == ["itest-ghost"]
    assert result.hosts["itest-ghost"].status == "unreachable"


def test_ctrl_c_stops_the_run_cleanly(deployed):
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(VENV_BIN / "gymfleet"), "restart", "-i", str(deployed), "--plain"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    err.until(lambda line: "[3/" in line, timeout=120)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    out, err = out.text(), err.text()
    assert proc.returncode == 99, (out, err)
    assert "restart: INTERRUPTED" in out and "run the same command again to finish" in out
    assert "Traceback" not in err + out
    left = own_processes("gymfleet-run-")
    assert left == [], f"ansible-playbook left running: {left}"
    # Nothing is lost: the same command again finishes the job.
    assert Cluster(deployed).restart().ok


def test_api_input_errors_are_raised_before_any_run(deployed):
    cluster = Cluster(deployed)
    with pytest.raises(GymfleetError, match="unknown playbook 'deploi'"):
        cluster.run("deploi")
    with pytest.raises(GymfleetError, match="--limit nobody: no host or group named nobody"):
        cluster.stop(limit="nobody")
    with pytest.raises(GymfleetError, match=r"inventory .*: no such file"):
        Cluster(Path(deployed) / "missing.yml").status()


def test_the_demo_stack_passes_preflight(lab, tmp_path):
    """What `make demo` deploys, laid over this lab's hosts, is a consistent inventory."""
    from gymfleet.lab.stack import write_stack

    copy = tmp_path / "lab"
    copy.mkdir()
    (copy / "hosts.yml").write_text((Path(lab) / "hosts.yml").read_text())
    write_stack(copy, tmp_path / "work", ROOT / "tests" / "doubles" / "omniboxes")
    result = Cluster(copy).preflight()
    assert result.ok, [failure.line() for failure in result.failures]


def test_secrets_never_reach_a_command_line_and_vaulted_files_work(lab, tmp_path):
    """Every process's argv is readable by every local user in /proc: -e values, a vaulted file's contents and the
    vault password must be in none of them, while the run gets them all."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    (tmp_path / "vault-pass").write_text("correct horse\n")
    (tmp_path / "secrets.yml").write_bytes(
        VaultLib([("default", VaultSecret(b"correct horse"))]).encrypt("redis_bind_any: inside-the-vault-7c1\n"))
    secrets = ("argv-secret-3f9e", "inside-the-vault-7c1", "correct horse")
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    # Two values preflight refuses, so that its message proves that each one reached the run.
    proc = subprocess.Popen([str(VENV_BIN / "gymfleet"), "preflight", "-i", str(lab), "-v", "-e",
                             "redis_maxmemory_policy=argv-secret-3f9e", "-e", f"@{tmp_path / 'secrets.yml'}",
                             "--vault-password-file", str(tmp_path / "vault-pass")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # What the user typed after the program's name; the kernel shows it after the interpreter and the script.
    typed = b"".join(b"\0" + os.fsencode(arg) for arg in proc.args[1:]) + b"\0"
    seen_ansible, leaked = False, set()
    while proc.poll() is None:
        # Every process but gymfleet's own, whose command line holds what the user typed, as any program's does; a
        # child gymfleet forks shows that same command line until it execs, so it is gymfleet's own too.
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                raw = cmdline.read_bytes()
            except OSError:
                continue
            if raw.endswith(typed):
                continue
            argv = raw.replace(b"\0", b" ").decode(errors="replace")
            seen_ansible |= "ansible-playbook" in argv
            leaked |= {secret for secret in secrets if secret in argv}
        time.sleep(0.05)
    out, err = proc.communicate()
    assert seen_ansible, "the scan ran while ansible-playbook did"
    assert leaked == set()
    assert proc.returncode == 2, err[-3000:]
    assert "argv-secret-3f9e" in err and "redis_bind_any is 'inside-the-vault-7c1', not a boolean" in err
    assert "TASK [" in err, "-v shows Ansible's own output"


def test_a_vaulted_file_without_a_password_is_refused_before_the_run(lab, tmp_path):
    from ansible.parsing.vault import VaultLib, VaultSecret

    (tmp_path / "secrets.yml").write_bytes(VaultLib([("default", VaultSecret(b"pw"))]).encrypt("a: 1\n"))
    proc = cli("preflight", "-i", str(lab), "-e", f"@{tmp_path / 'secrets.yml'}")
    assert proc.returncode == 5
    assert proc.stderr.strip().endswith("fix: add --ask-vault-pass or --vault-password-file FILE")


def test_logs_of_a_system_across_hosts_by_time(deployed):
    proc = cli("logs", "redis", "-i", str(deployed), "--since", "1d", "-n", "40")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert 0 < len(lines) <= 40
    assert {line.split()[2] for line in lines} == {"itest-node1", "itest-node2"}, "both hosts, host in front"
    assert all(line.split()[3].startswith("redis-server@6379.service:") for line in lines)
    stamps = [" ".join(line.split()[:2]) for line in lines]
    assert stamps == sorted(stamps), "interleaved by time"
    # Bounded: -n 1 on one host is that host's newest line.
    one = cli("logs", "redis", "-i", str(deployed), "--host", "itest-node2", "-n", "1")
    assert one.returncode == 0
    assert one.stdout.splitlines() == [line for line in lines if line.split()[2] == "itest-node2"][-1:]
    bad = cli("logs", "rays", "-i", str(deployed))
    assert bad.returncode == 5 and "no system named 'rays'; fix: use one of" in bad.stderr


def test_logs_follow_prints_new_lines_until_ctrl_c(deployed):
    env = os.environ | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(VENV_BIN / "gymfleet"), "logs", "redis", "-i", str(deployed), "--host", "itest-node1",
                             "-n", "5", "--follow"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines, errors = Lines(proc.stdout), Lines(proc.stderr)
    try:
        first = lines.until(lambda line: True, timeout=60)
        assert "itest-node1 redis-server@6379.service:" in first, first
        restarted = time.time()
        subprocess.run(["docker", "exec", "itest-node1", "systemctl", "restart", "redis-server@6379"], check=True)
        stopping = lines.until(lambda line: "Stopping" in line, timeout=60)
        assert "itest-node1 redis-server@6379.service:" in stopping
        stamp = datetime.strptime(" ".join(stopping.split()[:2]), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        assert stamp >= restarted - 1, "a line of the restart, printed while following"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    err = errors.text()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err


@pytest.mark.parametrize("node", ["itest-node1", "itest-node2"])
def test_what_a_deploy_leaves_on_each_host(deployed, node):
    """Read from the host itself (testinfra over docker exec): the service, its socket, its files' owners and modes,
    and Debian's own instance out of the way."""
    import testinfra

    host = testinfra.get_host(f"docker://{node}")
    service = host.service("redis-server@6379")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    for path in ("/etc/redis/redis-6379.conf", "/etc/redis/redis-6379.secrets.conf"):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("redis", "redis", 0o640), path
    data = host.file("/var/lib/redis/6379")
    assert data.is_directory and (data.user, data.mode) == ("redis", 0o750)
    debian_default = host.service("redis-server")
    assert not debian_default.is_running and not debian_default.is_enabled
    assert host.run("systemctl is-system-running").stdout.strip() == "running", "no unit left the host degraded"
