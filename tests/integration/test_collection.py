"""The built collection installs and runs its playbooks by fully qualified name, twice: the second
deploy changes nothing."""

import re
import subprocess

from conftest import LAB, ROOT, VENV_BIN, ansible_env, playbook, recap


def test_build_install_and_run_by_fqcn(lab, tmp_path):
    galaxy = str(VENV_BIN / "ansible-galaxy")
    # From outside the checkout, so its ansible.cfg (which puts the checkout on the path) plays no part.
    subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    tarball = next(tmp_path.glob("gymfleet-cluster-*.tar.gz"))
    installed = tmp_path / "collections"
    subprocess.run([galaxy, "collection", "install", "--force", "-p", str(installed), str(tarball)],
                   check=True, capture_output=True, cwd=tmp_path)
    assert (installed / "ansible_collections" / "gymfleet" / "cluster" / "roles" / "redis").is_dir()
    assert not (installed / "ansible_collections" / "gymfleet" / "cluster" / "collections").exists()

    # Outside the checkout, with no gymfleet config: only the installed collection can answer.
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\ncollections_path = {installed}\nhost_key_checking = False\n"
        "[ssh_connection]\npipelining = True\n")
    env = ansible_env(ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"))
    first = playbook("gymfleet.cluster.deploy", lab, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-4000:]
    assert str(ROOT) not in first.stdout  # tasks came from the installed copy, not the checkout
    second = playbook("gymfleet.cluster.deploy", lab, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-4000:]
    changed = {host: counts[1] for host, counts in recap(second.stdout).items()}
    assert changed == {f"{LAB}-node1": 0, f"{LAB}-node2": 0}, second.stdout[-4000:]

    status = playbook("gymfleet.cluster.status", lab, env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout[-4000:]
    for node in (f"{LAB}-node1", f"{LAB}-node2"):
        assert re.search(rf"{node}\s+redis :6379\s+up\s+redis 7", status.stdout), status.stdout[-3000:]
        assert re.search(rf"{node}\s+python_env\s+up\s+/opt/gymfleet/venv: Python 3\.11", status.stdout)


def test_check_diff_never_prints_a_secret(lab):
    canary = "itest-canary-7f3e9a"
    proc = playbook(ROOT / "playbooks" / "deploy.yml", lab, "--check", "--diff", "-e", f"redis_password={canary}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert canary not in proc.stdout + proc.stderr
    # The secrets file would change, and its diff says so without its content.
    assert "+++ after: /etc/redis/redis-6379.secrets.conf" in proc.stdout, proc.stdout[-3000:]
    assert "+(secret, changed)" in proc.stdout
    assert "+include /etc/redis/redis-6379.secrets.conf" not in proc.stdout  # unchanged config: no diff noise


def test_stop_status_restart(lab):
    stop = playbook(ROOT / "playbooks" / "stop.yml", lab)
    assert stop.returncode == 0, stop.stdout[-3000:]
    down = playbook(ROOT / "playbooks" / "status.yml", lab)
    assert down.returncode != 0
    assert re.search(rf"{LAB}-node1\s+redis :6379\s+DOWN\s+127\.0\.0\.1:6379: cannot connect", down.stdout)
    assert f"host {LAB}-node1: down: redis :6379" in " ".join(down.stdout.split())
    restart = playbook(ROOT / "playbooks" / "restart.yml", lab)
    assert restart.returncode == 0, restart.stdout[-3000:]
    up = playbook(ROOT / "playbooks" / "status.yml", lab)
    assert up.returncode == 0, up.stdout[-3000:]
    assert re.search(rf"{LAB}-node2\s+redis :6379\s+up", up.stdout)


def uv() -> str:
    import shutil
    from pathlib import Path

    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).is_file(), "uv is missing; fix: `make env` installs it (tools/bootstrap-env)"
    return found


def test_the_installed_package_runs_without_a_checkout(lab, tmp_path):
    """pip install gymfleet plus an inventory is enough: the wheel carries the collection and its own settings."""
    import os
    import shutil
    import sys
    import zipfile

    # From a copy of the tracked files: setuptools writes build/ beside the sources, which must not be the checkout.
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True, cwd=ROOT).stdout
    for name in filter(None, tracked.decode().split("\0")):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    subprocess.run([uv(), "build", "--wheel", "-o", str(tmp_path / "dist"), str(source)], check=True,
                   capture_output=True, cwd=tmp_path, env=os.environ | {"UV_NATIVE_TLS": "1"})
    wheel = next((tmp_path / "dist").glob("gymfleet-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what installing a pure-Python wheel lays down
    bundled = site / "gymfleet" / "collection" / "ansible_collections" / "gymfleet" / "cluster"
    assert (bundled / "roles" / "redis" / "tasks" / "main.yml").is_file()
    assert "inventory =" not in (bundled / "ansible.cfg").read_text()
    env = {k: v for k, v in os.environ.items() if k not in ("GYMFLEET_HOME", "ANSIBLE_CONFIG")}
    env |= {"PATH": f"{VENV_BIN}:{env['PATH']}", "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = ("import sys, gymfleet, gymfleet.runner as r; print(gymfleet.__file__); print(r.collection_root()); "
            "from gymfleet.cli import main; sys.exit(main(sys.argv[1:]))")
    # From a directory that is no checkout, with no GYMFLEET_HOME.
    proc = subprocess.run([sys.executable, "-c", code, "preflight", "-i", str(lab), "--plain"], capture_output=True,
                          text=True, cwd=tmp_path, env=env)
    where, root = proc.stdout.splitlines()[:2]
    assert where.startswith(str(site)) and root == str(bundled), proc.stdout[:500]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "cache" / "gymfleet" / "runs").is_dir()
    no_inventory = subprocess.run([sys.executable, "-c", code, "status"], capture_output=True, text=True,
                                  cwd=tmp_path, env=env)
    assert no_inventory.returncode == 5 and "fix: pass -i INVENTORY" in no_inventory.stderr
