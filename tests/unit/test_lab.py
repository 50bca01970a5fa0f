"""The lab's pure parts: APT source parsing, the inventory it writes, CLI argument errors."""

import ipaddress
import subprocess
import sys

import pytest
import yaml

from gymfleet import cli
from gymfleet.errors import GymfleetError
from gymfleet.lab import hosts
from gymfleet.lab.sources import Mirrors, deb822_for_image, host_mirrors


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_mirrors_from_deb822(tmp_path):
    write(tmp_path / "sources.list.d" / "debian.sources",
          "Types: deb\n# comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
          "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
          "Suites: bookworm-security\nComponents: main\n")
    write(tmp_path / "sources.list.d" / "other.sources.disabled", "Types: deb\nURIs: http://x\nSuites: bookworm\n")
    assert host_mirrors("bookworm", tmp_path) == Mirrors("http://mirror.example/debian",
                                                         "http://mirror.example/debian-security")


def test_mirrors_from_one_line_format_with_options(tmp_path):
    write(tmp_path / "sources.list",
          "# deb http://commented/debian bookworm main\n"
          "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian bookworm main\n"
          "deb-src http://src.example/debian bookworm main\n")
    assert host_mirrors("bookworm", tmp_path) == Mirrors("http://one.example/debian", None)


def test_no_mirror_for_the_release(tmp_path):
    write(tmp_path / "sources.list", "deb http://x/debian bullseye main\n")
    assert host_mirrors("bookworm", tmp_path) is None


def test_disabled_deb822_stanza_is_ignored(tmp_path):
    write(tmp_path / "sources.list.d" / "a.sources",
          "Types: deb\nURIs: http://off/debian\nSuites: bookworm\nEnabled: no\n\n"
          "Types: deb\nURIs: http://on/debian\nSuites: bookworm\n")
    assert host_mirrors("bookworm", tmp_path).archive == "http://on/debian"


def test_image_sources_use_the_host_mirrors():
    text = deb822_for_image("bookworm", Mirrors("http://m/debian", "http://m/sec"))
    assert "URIs: http://m/debian\nSuites: bookworm bookworm-updates" in text
    assert "URIs: http://m/sec\nSuites: bookworm-security" in text


def test_inventory_is_yaml_with_groups_and_a_connection_switch(tmp_path):
    text = hosts.render_inventory("t", "ssh", [("t-node1", "172.30.0.11"), ("t-node2", "172.30.0.12")],
                                  tmp_path / "id_ed25519")
    inventory = yaml.safe_load(text)
    assert set(inventory["all"]["children"]) == {"cluster", "redis", "python_env"}
    assert inventory["all"]["children"]["cluster"]["hosts"]["t-node2"]["gymfleet_lab_ip"] == "172.30.0.12"
    assert inventory["all"]["vars"]["gymfleet_lab_connection"] == "ssh"
    assert "redis_password" in inventory["all"]["vars"]


@pytest.mark.parametrize("name", ["", "Upper", "1abc", "a" * 25, "_under", "dot.name"])
def test_bad_lab_names(name):
    with pytest.raises(GymfleetError, match="fix:"):
        hosts.validate_name(name)


@pytest.mark.parametrize("nodes", [0, -1, hosts.MAX_NODES + 1])
def test_bad_node_counts(nodes):
    with pytest.raises(GymfleetError, match="fix:"):
        hosts.validate_nodes(nodes)


@pytest.mark.parametrize(
    "argv",
    [["lab", "frob"], ["lab", "up", "--nodes", "x"], ["nothing"], ["lab", "up", "--connection", "telnet"], []],
)
def test_usage_errors_are_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "gymfleet.cli", *argv], capture_output=True, text=True,
                          env={"PYTHONPATH": str(cli.Path(cli.__file__).parents[1])})
    assert proc.returncode == 5
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "fix: see `gymfleet" in proc.stderr


def test_lab_errors_are_one_line(monkeypatch, capsys):
    monkeypatch.setattr(hosts, "validate_nodes", lambda n: (_ for _ in ()).throw(GymfleetError("bad; fix: this")))
    assert cli.main(["lab", "up", "--nodes", "99"]) == 1
    assert capsys.readouterr().err == "gymfleet: error: bad; fix: this\n"


def test_the_inotify_limit_is_raised_for_the_lab_hosts(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    said = []
    hosts.ensure_inotify_instances(24, said.append, limit)
    needed = 24 * hosts.INOTIFY_PER_HOST + hosts.INOTIFY_HEADROOM
    assert int(limit.read_text()) == needed
    assert said == [f"raised fs.inotify.max_user_instances from 128 to {needed} for 24 lab hosts"]
    hosts.ensure_inotify_instances(3, said.append, limit)
    assert int(limit.read_text()) == needed and len(said) == 1, "a higher limit is left as it is"


def test_an_inotify_limit_that_cannot_be_raised_is_refused_with_the_fix():
    class ReadOnlyLimit:
        """Stands for /proc/sys/fs/inotify/max_user_instances as a user who is not root sees it."""

        def read_text(self):
            return "128\n"

        def write_text(self, text):
            raise PermissionError(13, "Permission denied")

    with pytest.raises(GymfleetError, match=r"^fs.inotify.max_user_instances is 128, and 32 lab hosts running systemd "
                                            r"need about \d+ .*; fix: sudo sysctl fs.inotify.max_user_instances=\d+$"):
        hosts.ensure_inotify_instances(32, print, ReadOnlyLimit())


def test_a_subnet_taken_in_between_is_retried(monkeypatch):
    """Two labs created side by side may pick the same free /24: Docker refuses the later, which takes the next."""
    calls = []

    def docker(argv, check=True, **_):
        calls.append(argv)
        refused = len(calls) == 1
        return subprocess.CompletedProcess(argv, int(refused), "",
                                           "Pool overlaps with other one on this address space" if refused else "")

    monkeypatch.setattr(hosts, "run", docker)
    monkeypatch.setattr(hosts, "_free_subnet", lambda: ipaddress.ip_network("172.30.9.0/24"))
    monkeypatch.setattr(hosts.time, "sleep", lambda seconds: None)
    hosts._create_network("twin", "gymfleet-twin")
    assert len(calls) == 2 and calls[1][:3] == ["docker", "network", "create"]
    assert calls[1][3:7] == ["--subnet", "172.30.9.0/24", "--gateway", "172.30.9.1"]
    calls.clear()
    monkeypatch.setattr(hosts, "run", lambda argv, check=True, **_: subprocess.CompletedProcess(argv, 1, "", "denied"))
    with pytest.raises(GymfleetError, match="creating Docker network 'gymfleet-twin' failed: denied"):
        hosts._create_network("twin", "gymfleet-twin")


def test_the_package_caches_are_mounted_and_apt_fetches_from_the_hosts_mirrors(tmp_path):
    from gymfleet.lab import cache

    options = cache.mount_options(tmp_path)
    assert options == ["-v", f"{tmp_path / 'pip'}:/root/.cache/pip", "-v", f"{tmp_path / 'uv'}:/root/.cache/uv"]
    assert (tmp_path / "pip").is_dir() and (tmp_path / "uv").is_dir()
    config = cache.apt_proxy_config(tmp_path, Mirrors("http://m/debian", "http://m/debian-security/"))
    assert f"CacheDir: {tmp_path / 'apt'}" in config and f"Port: {cache.APT_PROXY_PORT}" in config
    assert "Remap-debrep: file:deb_mirror*.gz /debian ; http://m/debian/\n" in config
    assert config.rstrip().endswith("/debian-security ; http://m/debian-security/")


def test_the_full_images_tag_follows_the_bare_ones(tmp_path):
    from gymfleet.lab import image

    bare, full = image.recipe_tags("Types: deb\n", "http://m/debian", [])
    assert bare.startswith("gymfleet-lab:bare-") and full.startswith("gymfleet-lab:") and bare != full
    other_bare, other_full = image.recipe_tags("Types: deb\n", "http://other/debian", [])
    assert other_bare != bare and other_full != full, "a new bare image is a new base for the full one"
    assert image.recipe_tags("Types: deb\n", "http://m/debian", []) == (bare, full)


def test_a_daemon_that_never_answers_names_its_log(tmp_path):
    from gymfleet.lab.run import start_daemon

    log = tmp_path / "logs" / "daemon.log"
    # It answers once its line is in the log: the wait is on the daemon's own sign of life.
    start_daemon(["sh", "-c", "echo started"], log, lambda: "started" in log.read_text(), 30, "the double")
    with pytest.raises(GymfleetError, match=f"the double did not answer within 1 s; fix: read {log}"):
        start_daemon(["sh", "-c", "echo again"], log, lambda: False, 1, "the double")
    assert log.read_text().splitlines()[0] == "started", "appended, not overwritten"
