"""The `gymfleet` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gymfleet.errors import GymfleetError
from gymfleet.lab.hosts import CONNECTIONS

DEFAULT_LAB = "gymfleet"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that says how to get help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; fix: see `{self.prog} --help`\n")


def _log(message: str) -> None:
    print(f"gymfleet: {message}", file=sys.stderr, flush=True)


def project_root(start: Path | None = None) -> Path | None:
    """The checkout that holds galaxy.yml and ansible.cfg, searching upwards from start (cwd)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "galaxy.yml").is_file() and (folder / "ansible.cfg").is_file():
            return folder
    return None


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
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gymfleet", description=__doc__)
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
    lab_down = lab_cmds.add_parser("down", help="remove a lab's containers, network and inventory")
    lab_down.add_argument("--name", default=DEFAULT_LAB)
    lab_cmds.add_parser("status", help="list labs and the state of their hosts")
    lab_cmds.add_parser("image", help="build the lab image if its recipe changed, print its tag")
    return parser


def _lab(args) -> int:
    from gymfleet.lab import engine, hosts, image

    if args.lab_command == "up":
        hosts.validate_name(args.name)
        hosts.validate_nodes(args.nodes)
    elif args.lab_command == "down":
        hosts.validate_name(args.name)
    engine.ensure_engine(_log, _state_dir())
    if args.lab_command == "image":
        print(image.ensure_image(_log))
    elif args.lab_command == "up":
        if args.exist_ok:
            lab_dir = hosts.resume(args.name, lab_inventory_root(), _log)
            if lab_dir is not None:
                print(f"lab {args.name}: hosts running; inventory: {lab_dir}")
                return 0
        tag = image.ensure_image(_log)
        lab_dir = hosts.up(
            args.name, args.nodes, args.connection, tag, lab_inventory_root(), _key_dir(args.name), _log
        )
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lab":
            return _lab(args)
    except GymfleetError as exc:
        print(f"gymfleet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gymfleet: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
