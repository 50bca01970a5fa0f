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

from gymfleet import runner
from gymfleet.events import RunResult, RunState
from gymfleet.runner import EventHandler, RunRequest, collection_root
from gymfleet.status import STATUS_SKIP_TAGS, StatusReport, report_from_run


class Cluster:
    """A cluster as an inventory names it. Every method validates its input before any host changes."""

    def __init__(self, inventory: str | Path | Sequence[str | Path], *, root: str | Path | None = None,
                 on_event: EventHandler | None = None, vault_password_files: Sequence[str | Path] = (),
                 vault_ids: Sequence[str] = (), vault_password: str | None = None, forks: int | None = None,
                 verbosity: int = 0):
        sources = [inventory] if isinstance(inventory, (str, Path)) else list(inventory)
        self.inventory = [str(source) for source in sources]
        self.root = Path(root) if root else collection_root()
        self.on_event = on_event
        # Files (or scripts) that give the vault password, vault ids (label@source), or the password itself, for
        # vaulted inventory values and variable files.
        self.vault_password_files = [str(path) for path in vault_password_files]
        self.vault_ids = list(vault_ids)
        self.vault_password = vault_password
        # Hosts worked on at once (None: ansible.cfg's) and Ansible's -v count.
        self.forks, self.verbosity = forks, verbosity

    def request(self, playbook: str, *, limit: str | None = None, tags: Sequence[str] = (),
                skip_tags: Sequence[str] = (), extravars: dict | None = None, extravar_sources: Sequence = (),
                check: bool = False, diff: bool = False) -> RunRequest:
        """What a run of `playbook` on this cluster asks for; extravar_sources are -e values as the CLI takes them
        (mappings, and @files that ansible-playbook reads itself), applied after extravars."""
        return RunRequest(playbook=playbook, inventory=self.inventory, limit=limit, tags=list(tags),
                          skip_tags=list(skip_tags), extravars=dict(extravars or {}),
                          extravar_sources=list(extravar_sources), vault_password_files=self.vault_password_files,
                          vault_ids=self.vault_ids, vault_password=self.vault_password, check=check, diff=diff,
                          verbosity=self.verbosity, forks=self.forks)

    def run(self, playbook: str, *, limit: str | None = None, tags: Sequence[str] = (), skip_tags: Sequence[str] = (),
            extravars: dict | None = None, extravar_sources: Sequence = (), check: bool = False, diff: bool = False,
            on_event: EventHandler | None = None, state: RunState | None = None) -> RunResult:
        """Run one of the collection's playbooks by name (deploy, restart, stop, status, ...). `state` collects the
        run's events as they come (a progress display's)."""
        result, _ = self.run_request(self.request(playbook, limit=limit, tags=tags, skip_tags=skip_tags,
                                                  extravars=extravars, extravar_sources=extravar_sources,
                                                  check=check, diff=diff), on_event, state)
        return result

    def run_request(self, request: RunRequest, on_event: EventHandler | None = None,
                    state: RunState | None = None) -> tuple[RunResult, RunState]:
        return runner.run_playbook(request, on_event=on_event or self.on_event, state=state, root=self.root)

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

    def status(self, *, limit: str | None = None, tags: Sequence[str] = (), skip_tags: Sequence[str] = (),
               extravars: dict | None = None, extravar_sources: Sequence = (), on_event: EventHandler | None = None,
               state: RunState | None = None) -> StatusReport:
        """Ask every component how it is; the report has one summary per system and one row per component. Health
        is judged from the report, not by the playbook's own verdict (its tag is skipped)."""
        request = self.request("status", limit=limit, tags=tags, skip_tags=[*skip_tags, *STATUS_SKIP_TAGS],
                               extravars=extravars, extravar_sources=extravar_sources)
        result, state = self.run_request(request, on_event, state)
        return report_from_run(result, state)
