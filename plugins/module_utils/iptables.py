"""Read and write one iptables chain that gymfleet owns, leaving every other chain as it is.

Changes go through `iptables-restore --noflush`, which replaces only the chains the input declares,
in one atomic commit per table; chains owned by Docker, Tailscale or the administrator are never
flushed or reordered. Rules are compared after normalizing what iptables-save rewrites (option
order, implicit `-m tcp`, `/32` on addresses), so a rule written by hand compares equal to its
saved form.
"""

from __future__ import annotations

import shlex

ADDRESS_OPTIONS = {"-s", "--source", "-d", "--destination"}
LONG_NAMES = {"--source": "-s", "--destination": "-d", "--protocol": "-p", "--jump": "-j",
              "--in-interface": "-i", "--out-interface": "-o", "--match": "-m"}


def _is_option(token: str) -> bool:
    return token.startswith("-") and not token[1:].isdigit() and token != "-"


def normalize_rule(rule: str, ip_version: str = "ipv4") -> tuple:
    """A comparable form of a rule: its options as a sorted tuple, with iptables-save's rewrites undone."""
    tokens = shlex.split(rule)
    options: list[tuple[str, str]] = []
    negate = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "!":
            negate = True
            index += 1
            continue
        if not _is_option(token):
            raise ValueError(f"rule {rule!r}: expected an option at {token!r}")
        name = LONG_NAMES.get(token, token)
        values = []
        index += 1
        while index < len(tokens) and not _is_option(tokens[index]) and tokens[index] != "!":
            values.append(tokens[index])
            index += 1
        value = " ".join(values)
        if name in ADDRESS_OPTIONS and value and "/" not in value:
            value += "/32" if ip_version == "ipv4" else "/128"
        options.append((("!" if negate else "") + name, value))
        negate = False
    protocols = {value for name, value in options if name == "-p"}
    options = [(n, v) for n, v in options if not (n == "-m" and v in protocols)]
    return tuple(sorted(options))


def parse_save(text: str, chain: str) -> tuple[bool, list[str], dict[str, list[str]]]:
    """From iptables-save output for one table: whether chain exists, its rules, and the jumps into it
    from other chains (parent chain -> rules that jump)."""
    exists = False
    rules: list[str] = []
    jumps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(f":{chain} "):
            exists = True
        elif line.startswith(f"-A {chain} "):
            rules.append(line[len(f"-A {chain} "):])
        elif line.startswith("-A "):
            parent, rest = line[3:].split(" ", 1)
            tokens = shlex.split(rest)
            if "-j" in tokens and tokens[tokens.index("-j") + 1] == chain:
                jumps.setdefault(parent, []).append(rest)
    return exists, rules, jumps


def restore_payload(table: str, chain: str, rules: list[str], add_jumps: list[dict]) -> str:
    """iptables-restore input that replaces chain's rules and inserts the jumps that are missing."""
    lines = [f"*{table}", f":{chain} - [0:0]"]
    lines += [f"-A {chain} {rule}" for rule in rules]
    for jump in add_jumps:
        match = f"{jump['match']} " if jump.get("match") else ""
        lines.append(f"-I {jump['chain']} {jump.get('position', 1)} {match}-j {chain}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jump_rule(jump: dict, chain: str) -> str:
    match = f"{jump['match']} " if jump.get("match") else ""
    return f"{match}-j {chain}"
