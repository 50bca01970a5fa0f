"""host_image's root filesystem: what it takes from the host, how links are kept, what the digest covers, and the
libraries ldd names. The module's runs against a real Docker engine are in tests/integration/test_host_image.py."""

import io
import os
import subprocess
import tarfile

import pytest
from ansible_collections.gymfleet.cluster.plugins.modules.host_image import RootFilesystem, loaded_libraries


@pytest.fixture()
def tree(tmp_path):
    """real/app/{run.py,data/x.bin,__pycache__/c.pyc}, alias -> real (a link among the directories),
    real/app/current -> run.py (a link to a file), and real/other (not asked for)."""
    app = tmp_path / "real" / "app"
    (app / "data").mkdir(parents=True)
    (app / "__pycache__").mkdir()
    (app / "run.py").write_text("print('hi')\n")
    (app / "data" / "x.bin").write_bytes(b"\x00" * 10)
    (app / "__pycache__" / "c.pyc").write_bytes(b"cache")
    (app / "current").symlink_to("run.py")
    (tmp_path / "real" / "other").write_text("not asked for")
    (tmp_path / "alias").symlink_to("real")
    return tmp_path


def test_takes_a_directory_whole_and_keeps_links_among_its_parents_as_links(tree):
    root = RootFilesystem(["*/__pycache__"])
    root.add(str(tree / "alias" / "app"))
    app = f"{tree}/real/app"
    assert {f"{app}/run.py", f"{app}/data/x.bin", f"{app}/current", f"{app}/data"} <= set(root.entries)
    assert root.links == {f"{tree}/alias": "real", f"{app}/current": "run.py"}
    # The parents are there (so the archive makes them with their modes), not what else they hold.
    assert f"{tree}/real" in root.entries and f"{tree}/real/other" not in root.entries
    assert not any("__pycache__" in path for path in root.entries)


def test_a_link_brings_what_it_points_to(tree):
    root = RootFilesystem([])
    root.add(str(tree / "real" / "app" / "current"))
    assert f"{tree}/real/app/run.py" in root.entries and f"{tree}/real/app/data" not in root.entries


def test_the_digest_follows_content_and_modes_not_times(tree):
    def digest():
        root = RootFilesystem([])
        root.add(str(tree / "real" / "app"))
        return root.digest()

    first = digest()
    os.utime(tree / "real" / "app" / "run.py", (1, 1))
    assert digest() == first
    (tree / "real" / "app" / "run.py").write_text("print('bye')\n")
    second = digest()
    assert second != first
    (tree / "real" / "app" / "run.py").chmod(0o755)
    assert digest() != second


def test_the_archive_holds_every_entry_at_its_path_and_a_tmp_for_everyone(tree):
    root = RootFilesystem([])
    root.add(str(tree / "alias" / "app" / "current"))
    stream = io.BytesIO()
    root.write(stream)
    stream.seek(0)
    with tarfile.open(fileobj=stream) as archive:
        members = {member.name: member for member in archive.getmembers()}
        base = str(tree).lstrip("/")
        assert members[f"{base}/alias"].issym() and members[f"{base}/alias"].linkname == "real"
        assert members[f"{base}/real/app/current"].linkname == "run.py"
        assert archive.extractfile(f"{base}/real/app/run.py").read() == b"print('hi')\n"
        assert members[f"{base}/real"].isdir()
        assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
        # Parents come before their children, as docker import needs to make them first.
        names = list(members)
        assert names.index(f"{base}/real") < names.index(f"{base}/real/app/run.py")


class Runner:
    """The one AnsibleModule method loaded_libraries uses, run for real."""

    def run_command(self, argv, environ_update=None):
        done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(environ_update or {})},
                              check=False)
        return done.returncode, done.stdout, done.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/ldd"), reason="needs glibc's ldd")
def test_ldd_names_the_loader_and_the_libraries_even_beside_a_file_that_is_not_dynamic(tmp_path):
    data = tmp_path / "plain.so"
    data.write_bytes(b"\x7fELF not really")
    found = loaded_libraries(Runner(), [os.path.realpath("/usr/bin/python3"), str(data)])
    assert any(os.path.basename(path).startswith("libc.so") for path in found)
    assert any("ld-linux" in path for path in found)
    assert all(path.startswith("/") for path in found)


def test_check_mode_without_an_engine_yet_reports_an_image_to_build(tmp_path):
    """A check run of a first deploy: the engine the same run would install is not there yet."""
    import json
    import sys

    from ansible_collections.gymfleet.cluster.plugins.modules import host_image

    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": "x/y", "paths": [str(tmp_path)],
                                                             "_ansible_check_mode": True}}))
    done = subprocess.run([sys.executable, host_image.__file__, str(arguments)], capture_output=True, text=True,
                          env={**os.environ, "PATH": str(tmp_path)}, check=False)
    result = json.loads(done.stdout)
    assert result["changed"] and result["tag"] == "pending" and result["msg"].startswith("docker: not on this host")
