"""gymfleet.cluster.warm_workers: after the playbook starts, the parent holds what each worker would load."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILTER_FILES = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py"))

# Run in a fresh interpreter: the plugin loaders are process-wide, and other tests load plugins too.
PROBE = """
import sys
import ansible.plugins.loader as loaders
loaders.init_plugin_loader([sys.argv[1]])  # as ansible-playbook does at start
from ansible_collections.gymfleet.cluster.plugins.callback.warm_workers import CallbackModule

def filters_loaded():
    return sorted(name.rsplit('.', 1)[1] for name in sys.modules
                  if name.startswith('ansible_collections.gymfleet.cluster.plugins.filter.'))
print(filters_loaded())
CallbackModule().v2_playbook_on_start(None)
print(filters_loaded())

# What a forked worker then does for its connection and shell: no documentation is parsed again.
def parsed_again(*args, **kwargs):
    raise AssertionError('a plugin documentation was parsed again')
loaders.yaml.load = parsed_again
for loader, name in ((loaders.connection_loader, 'ansible.builtin.ssh'), (loaders.shell_loader, 'ansible.builtin.sh'),
                     (loaders.become_loader, 'ansible.builtin.sudo')):
    assert loader.get(name, class_only=True) is not None, name
print('reused')
"""


def run_probe(probe: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", probe, str(ROOT / "collections")], capture_output=True, text=True,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")), timeout=60, check=False)


def test_the_plugins_every_worker_needs_are_loaded_once_when_the_playbook_starts():
    result = run_probe(PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", str(FILTER_FILES), "reused"]


def test_without_it_a_worker_parses_the_connections_documentation():
    result = run_probe(PROBE.replace("CallbackModule().v2_playbook_on_start(None)", ""))
    assert "a plugin documentation was parsed again" in result.stderr
