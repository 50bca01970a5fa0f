"""Make `ansible_collections.gymfleet.cluster` importable from the checkout, as Ansible sees it."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT / "src"))


def _load_collections_as_ansible_does() -> None:
    """Ansible's collection finder, set up now as ansible-playbook sets it up at start. A test that reads an inventory
    in-process (gymfleet.runner) sets it up otherwise, halfway through a worker: it drops the collection's modules
    that plain imports had loaded, and imports after that fail ("collection metadata was not loaded"). Which tests
    an xdist worker had run before made that a flake; set up first, the finder loads the collection for all."""
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([str(ROOT / "collections")])


_load_collections_as_ansible_does()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_port():
    """A real redis-server on loopback for the session, with no persistence."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing; fix: `make unit` installs it, or apt-get install redis-server"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)
