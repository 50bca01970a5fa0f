"""Run the collection's playbooks through ansible-runner's Python API.

Everything a person can get wrong (inventory, limit, tags, playbook name, -e syntax) is checked here
first, with one-line errors, before ansible-runner starts and before any host is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.events import RunResult, RunState
from gymfleet.records import Recorder

EventHandler = Callable[[dict], object]

# Tags Ansible itself gives meaning to; they are valid whatever the playbook's tasks are tagged with.
SPECIAL_TAGS = {"all", "always", "never", "tagged", "untagged"}


def project_root(start: Path | None = None) -> Path | None:
    """The checkout that holds galaxy.yml and ansible.cfg, searching upwards from start (cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "galaxy.yml").is_file() and (folder / "ansible.cfg").is_file():
            return folder
    return None


# Where a wheel carries the collection (setup.py puts it there).
BUNDLED = Path(__file__).resolve().parent / "collection" / "ansible_collections" / "gymfleet" / "cluster"


def collection_root() -> Path:
    """Where the playbooks are: $GYMFLEET_HOME; else the checkout around the current directory; else the checkout
    this package runs from (an editable install); else the collection the installed package carries."""
    if os.environ.get("GYMFLEET_HOME"):
        root = Path(os.environ["GYMFLEET_HOME"])
        if not (root / "playbooks").is_dir():
            raise GymfleetError(f"GYMFLEET_HOME={root} holds no playbooks/; fix: point it at a gymfleet checkout")
        return root
    for root in (project_root(), project_root(Path(__file__).resolve().parent)):
        if root is not None:
            return root
    if (BUNDLED / "playbooks").is_dir() and (BUNDLED / "ansible.cfg").is_file():
        return BUNDLED
    raise GymfleetError(
        "no gymfleet collection found (no checkout here or around the package, and the package carries none); "
        "fix: reinstall gymfleet from its wheel, cd into a checkout, or set GYMFLEET_HOME to one"
    )


def playbook_names(root: Path) -> list[str]:
    return sorted(path.stem for path in (root / "playbooks").glob("*.yml"))


def playbook_path(root: Path, name: str) -> Path:
    from gymfleet.manifest import lifecycle_playbook

    rendered = lifecycle_playbook(root, name.replace("-", "_"))
    if rendered:
        return rendered
    path = root / "playbooks" / f"{name.replace('-', '_')}.yml"
    if not path.is_file():
        raise GymfleetError(
            f"unknown playbook {name!r}; fix: use one of {', '.join(playbook_names(root))}"
        )
    return path


VAULT_HEADER = "$ANSIBLE_VAULT;"


def _variables_file(option: str, vaulted_ok: bool) -> Path:
    """The file of -e @FILE, checked as ansible-playbook will read it: a YAML or JSON mapping (values tagged !vault
    included), or a file that is vault-encrypted as a whole, which needs a vault password."""
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader

    path = Path(option[1:]).expanduser().resolve()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GymfleetError(f"-e {option}: cannot read it ({exc.__class__.__name__}); fix: name a YAML or JSON file "
                            "of variables") from None
    if text.startswith(VAULT_HEADER):
        if not vaulted_ok:
            raise GymfleetError(f"-e {option}: the file is vault-encrypted and no vault password was given; fix: add "
                                "--ask-vault-pass or --vault-password-file FILE")
        return path
    try:
        data = DataLoader().load(text, file_name=str(path))
    except AnsibleError as exc:
        raise GymfleetError(f"-e {option}: cannot read it ({exc.message.splitlines()[0]}); fix: correct the YAML or "
                            "JSON") from None
    if not isinstance(data, dict):
        raise GymfleetError(f"-e {option}: the file must hold a mapping of variables")
    return path


def parse_extravars(options: list[str], vaulted_ok: bool = False) -> list[dict | Path]:
    """Each -e as ansible-playbook reads it, in order (later ones win): @FILE, a YAML or JSON mapping when it starts
    with { or [, else KEY=VALUE pairs (several in one -e, quoted as in a shell, every VALUE kept as text).

    A file stays a file: ansible-playbook reads it, so a vaulted one is decrypted there and its secrets are never
    copied; a mapping is a dict, which run_playbook hands over in a file only the user can read, never in argv."""
    import yaml
    from ansible.errors import AnsibleError
    from ansible.parsing.splitter import parse_kv

    sources: list[dict | Path] = []
    for option in options:
        if not option:
            continue
        if option.startswith("@"):
            sources.append(_variables_file(option, vaulted_ok))
            continue
        if option[0] in "/.":
            raise GymfleetError(f"-e {option}: a file of variables; fix: write -e @{option}")
        if option[0] in "[{":
            try:
                data = yaml.safe_load(option)
            except yaml.YAMLError as exc:
                raise GymfleetError(f"-e {option!r}: not valid YAML or JSON ({exc.__class__.__name__}); fix: quote it "
                                    "for the shell, or use KEY=VALUE") from None
            if not isinstance(data, dict):
                raise GymfleetError(f"-e {option!r}: a list is not a set of variables; fix: give a mapping, such as "
                                    "'{\"name\": [1, 2]}'")
        else:
            try:
                data = parse_kv(option)
            except AnsibleError as exc:
                raise GymfleetError(f"-e {option!r}: {exc.message}; fix: write KEY=VALUE pairs") from None
            loose = data.pop("_raw_params", None)
            bad = [key for key in data if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)]
            if loose or bad or not data:
                raise GymfleetError(f"-e {option!r}: expected KEY=VALUE pairs with variable names as keys, a YAML or "
                                    "JSON mapping, or @FILE")
        sources.append(data)
    return sources


@dataclass
class Inventory:
    """The parsed inventory: which hosts exist and which groups they are in."""

    sources: list[str]
    hosts: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)


def _inventory_error(source: str, stderr: str) -> str:
    reason = re.search(r"(YAML parsing failed: [^\n]*|Syntax Error[^\n]*|Invalid [^\n]*)", stderr)
    origin = re.search(r"Origin: ([^\s<][^\n]*)", stderr)
    detail = reason.group(1).rstrip(".") if reason else "no inventory plugin could read it"
    where = f" at {origin.group(1)}" if origin else ""
    return f"inventory {source}: cannot be parsed: {detail}{where}; fix: correct the file (ansible-inventory -i " \
           f"{source} --list shows the same error)"


def _parse_in_process(sources: list[str], root: Path) -> dict[str, list[str]] | None:
    """Group -> hosts (every host of its children included), read with Ansible's own inventory code in this
    process, which is seconds faster than running ansible-inventory; None when a source cannot be parsed."""
    os.environ.update(_ansible_env(root))
    from ansible import constants
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader

    # As Ansible's own programs do first: a collection's inventory plugin (slurm_allocation) is found then. A
    # second call in one process (the API, tests) keeps the first finder, which Ansible warns about.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="AnsibleCollectionFinder has already been configured")
        init_plugin_loader(constants.COLLECTIONS_PATHS)

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            # Each source on its own, so that one that no plugin reads is a failure whatever Ansible's
            # settings say (they may have been read before this process set them).
            manager = InventoryManager(loader=DataLoader(), parse=False)
            for source in sources:
                if not manager.parse_source(str(Path(source).resolve())):
                    return None
            manager.reconcile_inventory()
        except AnsibleError:
            return None
    return {name: [host.name for host in group.get_hosts()] for name, group in manager.groups.items()}


# An inventory plugin's configuration (slurm_allocation's, a cloud's) answers differently from run to run.
PLUGIN_CONFIG = re.compile(rb"^plugin\s*:", re.MULTILINE)


def _static_fingerprint(sources: list[str], root: Path) -> str | None:
    """A digest of every file the inventory is read from (and of ansible.cfg), or None when a source may answer
    differently with the same files: an executable script or an inventory plugin's configuration."""
    digest = hashlib.sha256(b"gymfleet inventory groups 1\0" + (root / "ansible.cfg").read_bytes())
    for source in sources:
        path = Path(source).resolve()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            data = file.read_bytes()
            if os.access(file, os.X_OK) or PLUGIN_CONFIG.search(data):
                return None
            digest.update(str(file).encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:32]


def _groups(sources: list[str], root: Path) -> dict[str, list[str]] | None:
    """_parse_in_process's answer, remembered for a static inventory until one of its files changes: parsing
    costs about half a second (Ansible's inventory code), a large part of a `gymfleet status`."""
    try:
        fingerprint = _static_fingerprint(sources, root)
    except OSError:
        fingerprint = None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet" / "inventory-groups"
    known = cache / f"{fingerprint}.json"
    if fingerprint and known.is_file():
        with contextlib.suppress(OSError, ValueError):
            return json.loads(known.read_text())
    groups = _parse_in_process(sources, root)
    if fingerprint and groups is not None:
        with contextlib.suppress(OSError):
            cache.mkdir(parents=True, exist_ok=True)
            partial = known.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(groups))
            partial.replace(known)
    return groups


def load_inventory(sources: list[str], root: Path) -> Inventory:
    _ansible_programs_on_path()
    import ansible_runner

    for source in sources:
        if not Path(source).exists():
            raise GymfleetError(
                f"inventory {source}: no such file or directory; fix: pass -i with an inventory file or directory "
                "(a lab's is inventories/lab/<name>, written by `gymfleet lab up`)"
            )
    groups = _groups(sources, root)
    if groups is None:
        # Only to explain the failure: ansible-inventory's own messages name the line and the reason.
        with tempfile.TemporaryDirectory(prefix="gymfleet-inventory-") as private:
            _, err = ansible_runner.get_inventory(
                action="list", inventories=[str(Path(s).resolve()) for s in sources], response_format="json",
                quiet=True, private_data_dir=private, envvars=_ansible_env(root),
            )
        raise GymfleetError(_inventory_error(" ".join(sources), err or ""))
    hosts = groups.get("all", [])
    if not hosts:
        raise GymfleetError(f"inventory {' '.join(sources)}: it names no host; fix: add hosts under all:")
    return Inventory(sources=sources, hosts=hosts, groups=groups)


def check_limit(inventory: Inventory, limit: str | None) -> None:
    """Refuse a --limit that matches no host, with the names that do exist (plain names and groups only)."""
    if not limit:
        return
    patterns = [part.lstrip("&!") for part in re.split(r"[,:]", limit) if part]
    plain = [p for p in patterns if not re.search(r"[*?~\[]", p)]
    known = set(inventory.hosts) | set(inventory.groups)
    unknown = [p for p in plain if p not in known]
    if unknown:
        raise GymfleetError(
            f"--limit {limit}: no host or group named {', '.join(unknown)} in {' '.join(inventory.sources)}; "
            f"fix: use a host or group of the inventory (hosts: {', '.join(inventory.hosts[:6])}"
            f"{', ...' if len(inventory.hosts) > 6 else ''})"
        )


def _ansible_programs_on_path() -> None:
    """Ansible's programs stand beside the interpreter gymfleet runs with: a virtualenv that is not activated (a
    SLURM user's ~/gymfleet/bin/gymfleet) works as well as one that is. ansible-runner looks them up on PATH."""
    programs = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if programs not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [path, programs]))


def _ansible_env(root: Path) -> dict[str, str]:
    return {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    }


def _write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


def private_arguments(request: RunRequest, private: Path) -> list[str]:
    """The -e and vault arguments of ansible-playbook, naming files instead of holding values: the user's own files,
    or files written here in the run's private directory (0700, removed after the run), so that no variable or
    password is ever in a command line, which every local user can read in /proc."""
    arguments = []
    for index, source in enumerate([request.extravars, *request.extravar_sources]):
        if isinstance(source, Path):
            arguments += ["-e", f"@{source}"]
        elif source:
            path = _write_private(private / f"extravars-{index}.json", json.dumps(source, default=str))
            arguments += ["-e", f"@{path}"]
    for password_file in request.vault_password_files:
        arguments += ["--vault-password-file", str(Path(password_file).expanduser().resolve())]
    for vault_id in request.vault_ids:
        arguments += ["--vault-id", vault_id]
    if request.vault_password is not None:
        arguments += ["--vault-password-file", str(_write_private(private / "vault-password", request.vault_password))]
    return arguments


def _list_tasks(root: Path, playbook: Path, inventory: Inventory, request: RunRequest) -> list[set[str]]:
    """The tags of every task `--list-tasks` shows (dynamic includes add more tasks at run time)."""
    import ansible_runner

    with tempfile.TemporaryDirectory(prefix="gymfleet-list-") as private:
        # The run's own variables and vault passwords: a vaulted vars file is read while listing, too.
        cmdline = shlex.join(["--list-tasks", *private_arguments(request, Path(private))])
        runner = ansible_runner.run(
            private_data_dir=private, project_dir=str(root), playbook=str(playbook),
            inventory=[str(Path(s).resolve()) for s in inventory.sources], limit=request.limit, cmdline=cmdline,
            quiet=True, envvars=_ansible_env(root),
        )
        text = runner.stdout.read()
    tasks = []
    for line in text.splitlines():
        found = re.search(r"\tTAGS: \[(.*)\]\s*$", line)
        if found and not line.lstrip().startswith("play #"):
            tasks.append({tag.strip() for tag in found.group(1).split(",") if tag.strip()})
    return tasks


def selected(task_tags: set[str], tags: list[str], skip_tags: list[str] = ()) -> bool:
    """Whether a task runs under --tags and --skip-tags (Ansible's rules for always and never)."""
    if task_tags & set(skip_tags):
        return False
    if not tags or "all" in tags:
        return "never" not in task_tags or bool(task_tags & set(tags))
    return bool(task_tags & (set(tags) | {"always"})) or ("untagged" in tags and not task_tags) or (
        "tagged" in tags and bool(task_tags))


def _estimate_path(playbook: Path, inventory: Inventory, limit: str | None, tags: list[str],
                   skip_tags: list[str]) -> Path:
    key = json.dumps([str(playbook), sorted(inventory.hosts), limit, sorted(tags), sorted(skip_tags)])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet" / "task-counts"
    return cache / hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class RunRequest:
    playbook: str
    inventory: list[str]
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    extravars: dict = field(default_factory=dict)
    # -e as given, applied in order after extravars: mappings, and files that ansible-playbook reads itself.
    extravar_sources: list = field(default_factory=list)
    # Vault: password files or scripts (--vault-password-file), vault ids (--vault-id), a password asked for.
    vault_password_files: list[str] = field(default_factory=list)
    vault_ids: list[str] = field(default_factory=list)
    vault_password: str | None = field(default=None, repr=False)
    check: bool = False
    diff: bool = False
    verbosity: int = 0
    # Hosts worked on at once; None: ansible.cfg's.
    forks: int | None = None


def _log(message: str) -> None:
    print(f"gymfleet: {message}", file=sys.stderr, flush=True)


def run_playbook(request: RunRequest, on_event: EventHandler | None = None,
                 state: RunState | None = None, root: Path | None = None, log=_log) -> tuple[RunResult, RunState]:
    """Validate, then run one playbook; every event goes to `state` and then to `on_event`. On a SLURM inventory,
    the allocation is entered first (asked for by a deploy) and given back after a stop; `log` says so.

    Ctrl-C (SIGINT) cancels the run through ansible-runner (the ansible-playbook process is ended), and the
    result says so with status "canceled"; it is not raised as KeyboardInterrupt.
    """
    import ansible_runner

    from gymfleet import slurm

    root = root or collection_root()
    playbook = playbook_path(root, request.playbook)
    # A *.slurm.yml inventory used outside salloc runs in the allocation deploy asked for (not a --check one),
    # for the CLI and the API alike; the inventory plugin reads it while the inventory is parsed.
    os.environ.update(slurm.enter(request.inventory, may_allocate=request.playbook == "deploy" and not request.check,
                                  log=log))
    inventory = load_inventory(request.inventory, root)
    check_limit(inventory, request.limit)
    state = state or RunState()
    estimate_file = _estimate_path(playbook, inventory, request.limit, request.tags, request.skip_tags)
    if request.tags or not estimate_file.is_file():
        listed = _list_tasks(root, playbook, inventory, request)
        known_tags = set().union(*listed)
        unknown = [tag for tag in request.tags if tag not in known_tags | SPECIAL_TAGS]
        # Tags the CLI itself skips (status' own verdict) are no choice of the user's.
        usable = sorted(known_tags - SPECIAL_TAGS - set(request.skip_tags))
        if unknown and not usable:
            raise GymfleetError(f"--tags {','.join(unknown)}: {request.playbook} has no tags (its tasks cover every "
                                "system at once); fix: drop --tags, and pick hosts with --limit")
        if unknown:
            raise GymfleetError(f"--tags {','.join(unknown)}: no task of {request.playbook} has that tag; fix: use one "
                                f"of {', '.join(usable)}")
        state.expected_tasks = sum(selected(task_tags, request.tags, request.skip_tags) for task_tags in listed)
    if estimate_file.is_file():
        state.expected_tasks = int(estimate_file.read_text() or 0)

    cancelled = threading.Event()

    def on_sigint(signum, frame):
        cancelled.set()

    recorder = Recorder(request)

    def handler(event: dict) -> bool:
        state.feed(event)
        recorder.event(event)
        if on_event is not None:
            on_event(event)
        return True

    cmdline = []
    if request.check:
        cmdline.append("--check")
    if request.diff:
        cmdline.append("--diff")
    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() \
        else None
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="gymfleet-run-") as private:
            cmdline += private_arguments(request, Path(private))
            runner = ansible_runner.run(
                private_data_dir=private, project_dir=str(root), playbook=str(playbook),
                inventory=[str(Path(s).resolve()) for s in request.inventory], limit=request.limit,
                tags=",".join(request.tags) or None, skip_tags=",".join(request.skip_tags) or None,
                cmdline=shlex.join(cmdline) or None, verbosity=request.verbosity or None, forks=request.forks,
                quiet=True,
                envvars=_ansible_env(root), event_handler=handler, cancel_callback=cancelled.is_set,
                # Not ansible-runner's own cache in this run's temporary directory, which dies with it: the one
                # ansible.cfg names, so the next run knows each host's cluster address without asking.
                fact_cache_type=None,
            )
            status, rc = runner.status, runner.rc
            output = runner.stdout.read()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    message = ""
    if cancelled.is_set():
        status = "canceled"
        message = (f"interrupted during {state.current_task or 'start-up'!r}; hosts may be part-way through; "
                   f"run the same command again to finish")
    elif status == "failed" and not state.tasks_started:
        errors = [line for line in output.splitlines() if "ERROR" in line]
        message = errors[0].split("]: ", 1)[-1] if errors else "ansible-playbook failed before any task ran"
    elif state.finished and status == "successful":
        estimate_file.parent.mkdir(parents=True, exist_ok=True)
        estimate_file.write_text(str(state.tasks_started))
    result = RunResult(
        playbook=request.playbook, status=status, rc=rc if rc is not None else 1, check=request.check,
        elapsed=time.monotonic() - started, tasks=state.tasks_started, hosts=dict(state.hosts),
        failures=list(state.failures), message=message, run_id=recorder.run_id,
    )
    recorder.finish(result, output)
    if request.playbook == "stop" and result.ok and not request.check:
        slurm.leave(request.inventory, log)
    return result, state
