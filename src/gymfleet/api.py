"""The Python API: one object per inventory, one method per playbook.

    from gymfleet import Cluster

    cluster = Cluster("inventories/lab/gymfleet")
    result = cluster.deploy(tags=["redis"], on_event=print)
    if not result.ok:
        for failure in result.failures:
            print(failure.line())
    print(cluster.status().systems["redis"]["summary"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gymfleet.events import RunResult
from gymfleet.runner import EventHandler, RunRequest, collection_root, run_playbook
from gymfleet.status import STATUS_SKIP_TAGS, StatusReport, report_from_run


class Cluster:
    """A cluster as an inventory names it. Every method validates its input before any host changes."""

    def __init__(self, inventory: str | Path | Sequence[str | Path], *, root: str | Path | None = None,
                 on_event: EventHandler | None = None, vault_password_files: Sequence[str | Path] = ()):
        sources = [inventory] if isinstance(inventory, (str, Path)) else list(inventory)
        self.inventory = [str(source) for source in sources]
        self.root = Path(root) if root else collection_root()
        self.on_event = on_event
        # Files (or scripts) that give the vault password, for vaulted inventory values and variable files.
        self.vault_password_files = [str(path) for path in vault_password_files]

    def run(self, playbook: str, *, limit: str | None = None, tags: Sequence[str] = (),
            extravars: dict | None = None, check: bool = False, diff: bool = False,
            on_event: EventHandler | None = None) -> RunResult:
        """Run one of the collection's playbooks by name (deploy, restart, stop, status, ...)."""
        result, _ = self._run(playbook, limit, tags, extravars, check, diff, on_event)
        return result

    def _run(self, playbook, limit, tags, extravars, check, diff, on_event, skip_tags=()):
        request = RunRequest(playbook=playbook, inventory=self.inventory, limit=limit, tags=list(tags),
                             skip_tags=list(skip_tags), extravars=dict(extravars or {}), check=check, diff=diff,
                             vault_password_files=self.vault_password_files)
        return run_playbook(request, on_event=on_event or self.on_event, root=self.root)

    def deploy(self, **options) -> RunResult:
        return self.run("deploy", **options)

    def start(self, **options) -> RunResult:
        return self.run("start", **options)

    def restart(self, **options) -> RunResult:
        return self.run("restart", **options)

    def stop(self, **options) -> RunResult:
        return self.run("stop", **options)

    def flush_restart(self, **options) -> RunResult:
        return self.run("flush_restart", **options)

    def preflight(self, **options) -> RunResult:
        return self.run("preflight", **options)

    def status(self, *, limit: str | None = None, tags: Sequence[str] = (), extravars: dict | None = None,
               on_event: EventHandler | None = None) -> StatusReport:
        """Ask every component how it is; the report has one summary per system and one row per component."""
        result, state = self._run("status", limit, tags, extravars, False, False, on_event,
                                  skip_tags=STATUS_SKIP_TAGS)
        return report_from_run(result, state)
