"""The `gymfleet` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from gymfleet.errors import Exit, GymfleetError
from gymfleet.lab.hosts import CONNECTIONS
from gymfleet.runner import project_root

DEFAULT_LAB = "gymfleet"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that says how to get help."""

    def error(self, message: str):
        self.exit(Exit.BAD_INPUT, f"{self.prog}: {message}; fix: see `{self.prog} --help`\n")


def _log(message: str) -> None:
    print(f"gymfleet: {message}", file=sys.stderr, flush=True)


def lab_inventory_root() -> Path:
    if os.environ.get("GYMFLEET_LAB_DIR"):
        return Path(os.environ["GYMFLEET_LAB_DIR"])
    root = project_root()
    if root is not None:
        return root / "inventories" / "lab"
    return Path.home() / ".local" / "share" / "gymfleet" / "labs"


def _state_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymfleet"


def _key_dir(lab: str) -> Path:
    return _state_dir() / "labs" / lab


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return number


def _version() -> str:
    from ansible.release import __version__ as ansible_core

    from gymfleet import __version__

    return f"gymfleet {__version__} (ansible-core {ansible_core}, Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gymfleet", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lab = commands.add_parser("lab", help="local lab hosts: Debian containers running systemd")
    lab_cmds = lab.add_subparsers(dest="lab_command", required=True, parser_class=_Parser)
    lab_up = lab_cmds.add_parser("up", help="create N lab hosts and write their inventory")
    lab_up.add_argument("--nodes", type=_positive_int, default=3, help="how many hosts (default 3)")
    lab_up.add_argument("--name", default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})")
    lab_up.add_argument(
        "--connection", choices=CONNECTIONS, default="ssh",
        help="how Ansible reaches the hosts by default (the inventory can switch later)",
    )
    lab_up.add_argument(
        "--exist-ok", action="store_true", help="when the lab exists, start its hosts instead of failing"
    )
    lab_up.add_argument("--bare", action="store_true",
                        help="hosts from the bare image, without the Debian packages roles install (tests that "
                             "prove those installs)")
    lab_up.add_argument("--volume", action="append", default=[], metavar="SRC:DST[:MODE]",
                        help="mount a folder of this machine into every host (repeatable)")
    lab_down = lab_cmds.add_parser("down", help="remove a lab's containers, network and inventory")
    lab_down.add_argument("--name", default=DEFAULT_LAB)
    lab_cmds.add_parser("status", help="list labs and the state of their hosts")
    lab_stack = lab_cmds.add_parser("stack", help="lay the whole gymfleet stack over a lab's hosts (for make demo)")
    lab_stack.add_argument("--name", default=DEFAULT_LAB)
    lab_stack.add_argument("--omniboxes", type=Path, metavar="PATH",
                           help="a microsoft/webgym checkout: deploy the real OmniBoxes instead of the test double")
    lab_cmds.add_parser("image", help="build the lab images (bare, full) if their recipes changed, print their tags")
    for name, summary in PLAYBOOK_COMMANDS.items():
        _playbook_options(commands.add_parser(name, help=summary), status=name == "status")
    run = commands.add_parser("run", help="run another of the collection's playbooks by name (start, ray_upgrade, ...)")
    run.add_argument("playbook", help="playbook name, as in playbooks/<name>.yml")
    _playbook_options(run, status=False)
    logs = commands.add_parser("logs", help="one system's service logs on every host that runs them, by time")
    logs.add_argument("system", help="a system of meta/systems.yml: omniboxes, ray, openenv, redis, ...")
    logs.add_argument("-i", "--inventory", action="append", metavar="INVENTORY",
                      help="inventory file or directory; repeat to combine (default: ansible.cfg's)")
    logs.add_argument("--host", "-l", "--limit", dest="host", metavar="PATTERN", help="only these hosts or groups")
    logs.add_argument("--since", metavar="T", help="only newer: 30s, 10m, 2h, 1d ago, a local time, or @EPOCH")
    logs.add_argument("-n", "--lines", type=_positive_int, default=100, metavar="N",
                      help="at most the newest N lines (default 100; per poll with --follow)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    runs = commands.add_parser("runs", help="the runs kept in ~/.cache/gymfleet/runs, newest first")
    runs.add_argument("-n", "--number", type=_positive_int, default=20, metavar="N", help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="print them as one JSON document")
    runs_cmds = runs.add_subparsers(dest="runs_command", parser_class=_Parser)
    show = runs_cmds.add_parser("show", help="a kept run's summary and failures again, or Ansible's output")
    show.add_argument("run_id", metavar="RUN_ID", help="its id, a unique start of it, or last")
    show.add_argument("--output", action="store_true", help="print Ansible's own output of that run instead")
    show.add_argument("--json", action="store_true", help="print its result as one JSON document")
    return parser


PLAYBOOK_COMMANDS = {
    "deploy": "install and start everything the inventory names (idempotent)",
    "start": "start the deployed services again, in dependency order, without installing anything",
    "restart": "restart the services cleanly, in dependency order",
    "stop": "stop every service gymfleet runs",
    "status": "one table per system: health gathered from every host",
    "flush-restart": "OmniBoxes: flush the pools and the registry, restart, verify",
    "preflight": "validate the inventory without changing any host",
}


def _playbook_options(parser: argparse.ArgumentParser, status: bool) -> None:
    parser.add_argument("-i", "--inventory", action="append", metavar="INVENTORY",
                        help="inventory file or directory; repeat to combine (default: ansible.cfg's)")
    parser.add_argument("-l", "--limit", metavar="PATTERN", help="only these hosts or groups")
    parser.add_argument("-t", "--tags", metavar="T", action="append", default=[],
                        help="only tasks with these tags (comma-separated or repeated)")
    parser.add_argument("--skip-tags", metavar="T", action="append", default=[],
                        help="leave out tasks with these tags (comma-separated or repeated)")
    parser.add_argument("-f", "--forks", type=_positive_int, metavar="N",
                        help="hosts worked on at once (default: ansible.cfg's)")
    parser.add_argument("-e", "--extra-vars", metavar="VARS", action="append", default=[],
                        help="as ansible-playbook: KEY=VALUE pairs (text), a YAML or JSON mapping, or @FILE")
    parser.add_argument("--ask-vault-pass", "-J", action="store_true", help="ask for the vault password")
    parser.add_argument("--vault-password-file", metavar="FILE", action="append", default=[],
                        help="vault password file or script, as ansible-playbook's (repeatable)")
    parser.add_argument("--vault-id", metavar="ID", action="append", default=[],
                        help="vault identity, LABEL@SOURCE, as ansible-playbook's (repeatable)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show Ansible's own output instead of the progress display (-vvvv for the most)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    if status:
        parser.add_argument("--watch", nargs="?", type=_positive_int, const=10, metavar="SECONDS",
                            help="refresh every SECONDS (default 10) until Ctrl-C")
    else:
        parser.add_argument("-C", "--check", action="store_true", help="report what would change, change nothing")
        parser.add_argument("-D", "--diff", action="store_true", help="show the changes to files")
        parser.add_argument("-y", "--yes", action="store_true",
                            help="stop and flush-restart: go on without asking (needed without a terminal)")


def _lab(args) -> int:
    from gymfleet.lab import cache, engine, hosts, image

    if args.lab_command == "up":
        hosts.validate_name(args.name)
        hosts.validate_nodes(args.nodes)
        if args.connection == "paramiko":
            import importlib.util

            if importlib.util.find_spec("paramiko") is None:
                raise GymfleetError("--connection paramiko: paramiko is not installed; fix: pip install "
                                    "'gymfleet[paramiko]', or use --connection ssh")
    elif args.lab_command in ("down", "stack"):
        hosts.validate_name(args.name)
    if args.lab_command == "stack":
        from gymfleet.lab import stack
        from gymfleet.runner import collection_root

        double = collection_root() / "tests" / "doubles" / "omniboxes"
        path = stack.write_stack(lab_inventory_root() / args.name, _key_dir(args.name), double, args.omniboxes)
        print(f"lab {args.name}: the whole stack is laid out in {path}")
        return 0
    engine.ensure_engine(_log, _state_dir())
    if args.lab_command == "image":
        cache.ensure_apt_proxy(_log, image.release_mirrors())
        print("\n".join(image.ensure_images(_log)))
    elif args.lab_command == "up":
        if args.exist_ok:
            lab_dir = hosts.resume(args.name, lab_inventory_root(), _log)
            if lab_dir is not None:
                print(f"lab {args.name}: hosts running; inventory: {lab_dir}")
                return 0
        cache.ensure_apt_proxy(_log, image.release_mirrors())
        bare, full = image.ensure_images(_log)
        lab_dir = hosts.up(args.name, args.nodes, args.connection, bare if args.bare else full,
                           lab_inventory_root(), _key_dir(args.name), _log, tuple(args.volume))
        print(f"lab {args.name}: {args.nodes} hosts up; inventory: {lab_dir}")
    elif args.lab_command == "down":
        removed = hosts.down(args.name, lab_inventory_root(), _key_dir(args.name))
        print(f"lab {args.name}: removed {removed} hosts")
    elif args.lab_command == "status":
        labs = hosts.status()
        if not labs:
            print("no labs")
        for lab, nodes in labs.items():
            print(f"lab {lab}")
            print(f"  {'HOST':<24} {'ADDRESS':<16} {'CONTAINER':<10} SYSTEMD")
            for node in nodes:
                print(f"  {node.name:<24} {node.ip:<16} {node.state:<10} {node.systemd}")
    return 0


def _default_inventory() -> list[str]:
    """ansible.cfg's inventory, relative to the checkout, which is what ansible-playbook would use."""
    import configparser

    from gymfleet.runner import collection_root

    root = collection_root()
    config = configparser.ConfigParser(interpolation=None)
    config.read(root / "ansible.cfg")
    inventory = config.get("defaults", "inventory", fallback="")
    if not inventory:
        # An installed package has no lab beside it.
        raise GymfleetError("no inventory given, and ansible.cfg names none; fix: pass -i INVENTORY (a file or "
                            "directory; `gymfleet lab up` writes one for a local lab)")
    return [str(root / part.strip()) for part in inventory.split(",") if part.strip()]


def _summary(result, title: str) -> str:
    from gymfleet.progress import clock

    statuses = [host.status for host in result.hosts.values()]
    counts = f"{len(statuses)} hosts: " + ", ".join(
        f"{statuses.count(status)} {status}" for status in ("ok", "changed", "failed", "unreachable"))
    verdict = {"successful": "done", "failed": "FAILED", "canceled": "INTERRUPTED"}.get(result.status, result.status)
    lines = [f"{title}: {verdict} in {clock(result.elapsed)}; {result.tasks} tasks, {result.changed} changes"
             f"{' (check mode: nothing was changed)' if result.check else ''}; {counts}"]
    lines += [f"  {failure.line()}" for failure in result.failures]
    unreachable = sorted({failure.host for failure in result.failures if failure.unreachable})
    if unreachable:
        lines.append(f"  fix for {', '.join(unreachable)}: check that the host is up and that Ansible can log in "
                     "(ansible_host, ansible_user, the SSH key), e.g. `ansible -m ping HOST -i INVENTORY`")
    if result.message:
        lines.append(f"  {result.message}")
    if result.run_id and not result.ok:
        lines.append(f"  look again: gymfleet runs show {result.run_id} (--output for Ansible's own)")
    return "\n".join(lines)


# What takes services away from their users: asked before, on a terminal; --yes everywhere else.
CONFIRMED = {"stop": "stop every service gymfleet runs", "flush-restart": "stop OmniBoxes, flush its registry and "
             "pools (leases included) and start it again", "flush_restart": "stop OmniBoxes, flush its registry "
             "and pools (leases included) and start it again"}


def _confirm(name: str, request) -> None:
    from gymfleet.runner import check_limit, collection_root, load_inventory

    # A bad inventory or limit is refused before anyone is asked.
    check_limit(load_inventory(request.inventory, collection_root()), request.limit)
    where = f"hosts {request.limit}" if request.limit else "every host"
    inventories = ", ".join(request.inventory)
    what = CONFIRMED[name] + (f" (tasks tagged {','.join(request.tags)})" if request.tags else "")
    if not sys.stdin.isatty():
        raise GymfleetError(f"{name} would {what} on {where} of {inventories}, and there is no terminal "
                            "to ask on; fix: add --yes")
    answer = input(f"gymfleet {name}: {what} on {where} of {inventories}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise GymfleetError(f"{name}: not confirmed, nothing was done; fix: answer y, or add --yes")


def _exit_code(result) -> int:
    """ansible-playbook's status for the same outcome: an unreachable host wins over a failed one, as in Ansible."""
    if result.status == "successful":
        return Exit.OK
    if result.status == "canceled":
        return Exit.INTERRUPTED
    if any(failure.unreachable for failure in result.failures):
        return Exit.HOST_UNREACHABLE
    return Exit.HOST_FAILED if result.failures else Exit.NOT_OK


def _tag_list(values: list[str]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _cluster(args):
    """The cluster the command line names, with its vault and run options: the CLI is a layer over the API."""
    from gymfleet.api import Cluster

    password = None
    if args.ask_vault_pass:
        import getpass

        password = getpass.getpass("Vault password: ")
    return Cluster(args.inventory or _default_inventory(), vault_password_files=args.vault_password_file or (),
                   vault_ids=args.vault_id or (), vault_password=password, forks=args.forks,
                   verbosity=args.verbose or 0)


def _playbook(args) -> int:
    from gymfleet.progress import Display
    from gymfleet.runner import parse_extravars

    name = args.playbook if args.command == "run" else args.command
    cluster = _cluster(args)
    options = {"limit": args.limit, "tags": _tag_list(args.tags), "skip_tags": _tag_list(args.skip_tags),
               "extravar_sources": parse_extravars(args.extra_vars, vaulted_ok=bool(
                   args.ask_vault_pass or args.vault_password_file or args.vault_id))}
    if name == "status":
        return _status(args, cluster, options)
    request = cluster.request(name, check=getattr(args, "check", False), diff=getattr(args, "diff", False),
                              **options)
    if name in CONFIRMED and not (args.yes or request.check):
        _confirm(name, request)
    display = Display(name, live=False if args.plain else None, verbose=bool(args.verbose))
    display.start()
    try:
        result, _ = cluster.run_request(request, on_event=display.event, state=display.state)
    finally:
        display.finish()
    print(json.dumps(result.to_dict(), indent=2) if args.json else _summary(result, name))
    return _exit_code(result)


def _status(args, cluster, options: dict) -> int:
    """Health is judged from the report (exit 1 when anything is down), not by the playbook's own assert."""
    from gymfleet.progress import Display

    while True:
        # While watching, the table is the display; a progress block would only flicker above it.
        display = Display("status", live=False if args.plain else None, verbose=bool(args.verbose))
        quiet = (args.watch is not None or args.json) and not args.verbose
        if not quiet:
            display.start()
        try:
            report = cluster.status(on_event=None if quiet else display.event, state=display.state, **options)
        finally:
            if not quiet:
                display.finish()
        result = report.run
        if result.status == "canceled":
            print(_summary(result, "status"), file=sys.stderr)
            return Exit.OK if args.watch is not None else Exit.INTERRUPTED
        if args.json:
            print(json.dumps(report.to_dict(), indent=2), flush=True)
        else:
            if args.watch is not None and sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")
            print(report.render())
            if result.failures or result.message:
                print(_summary(result, "status"))
        if args.watch is None:
            return Exit.OK if report.healthy else Exit.NOT_OK
        print(f"\n{time.strftime('%H:%M:%S')}: next refresh in {args.watch} s (Ctrl-C ends)", flush=True)
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def _runs(args) -> int:
    from gymfleet.progress import clock
    from gymfleet.records import find_run, list_runs, result_of

    if args.runs_command == "show":
        path = find_run(args.run_id)
        result = result_of(path)
        if args.output:
            print((path / "stdout.txt").read_text() if (path / "stdout.txt").is_file() else "", end="")
        elif result is None:
            print(f"{path.name}: no result recorded: the run is still going, or its process was killed; its "
                  f"events so far are in {path / 'events.jsonl'}")
            return Exit.NOT_OK
        elif args.json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            print(_summary(result, f"{path.name} ({result.playbook})"))
            print(f"  record: {path} (events.jsonl, stdout.txt, result.json)")
        return Exit.OK
    runs = list_runs()[: args.number]
    if args.json:
        print(json.dumps(runs, indent=2))
        return Exit.OK
    print(f"{'RUN ID':<38} {'RESULT':<12} {'TIME':>8}  {'HOSTS':<28} INVENTORY")
    for run in runs:
        result = run["result"]
        verdict = {"successful": "done", "failed": "FAILED", "canceled": "INTERRUPTED"}.get(
            result["status"], result["status"]) if result else "unfinished"
        hosts = result["hosts"] if result else {}
        statuses = [host["status"] for host in hosts.values()]
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("ok", "changed", "failed", "unreachable")
                           if statuses.count(s))
        print(f"{run['run_id']:<38} {verdict:<12} {clock(result['elapsed_seconds']) if result else '-':>8}  "
              f"{counts or '-':<28} {' '.join(run['inventory'])}")
    return Exit.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lab":
            return _lab(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "logs":
            from gymfleet.logs import show
            from gymfleet.runner import collection_root

            return show(collection_root(), args.inventory or _default_inventory(), args.system, args.host,
                        args.since, args.lines, args.follow)
        return _playbook(args)
    except GymfleetError as exc:
        print(f"gymfleet: error: {exc}", file=sys.stderr)
        # A playbook command raises only while checking its input, before any host is touched.
        return Exit.NOT_OK if args.command == "lab" else Exit.BAD_INPUT
    except KeyboardInterrupt:
        print("gymfleet: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`); nothing more to say to it.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return Exit.NOT_OK


if __name__ == "__main__":
    sys.exit(main())
