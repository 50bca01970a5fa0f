"""Read and write one iptables chain that gymfleet owns, leaving every other chain as it is.

Changes go through `iptables-restore --noflush`, which replaces only the chains the input declares,
in one atomic commit per table; chains owned by Docker, Tailscale or the administrator are never
flushed or reordered. Rules are compared after normalizing what iptables-save rewrites (option
order, implicit `-m tcp`, `/32` on addresses), so a rule written by hand compares equal to its
saved form.

`converge_chain` is shared by the module iptables_chain and by the services engine's `chains`, which lays out
a component's chains in the same call as its boot unit.
"""

from __future__ import annotations

import os
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


def restore_payload(table: str, chain: str, rules: list[str], add_jumps: list[dict],
                    stale_jumps: tuple = ()) -> str:
    """iptables-restore input that replaces chain's rules, deletes stale jumps ((parent, rule) as saved)
    and inserts the jumps that are missing."""
    lines = [f"*{table}", f":{chain} - [0:0]"]
    lines += [f"-A {chain} {rule}" for rule in rules]
    lines += [f"-D {parent} {rule}" for parent, rule in stale_jumps]
    for jump in add_jumps:
        match = f"{jump['match']} " if jump.get("match") else ""
        lines.append(f"-I {jump['chain']} {jump.get('position', 1)} {match}-j {chain}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jump_rule(jump: dict, chain: str) -> str:
    match = f"{jump['match']} " if jump.get("match") else ""
    return f"{match}-j {chain}"


# The options of one chain: the module iptables_chain's argument spec and the services engine's chains[].
CHAIN_OPTIONS = {
    "chain": {"type": "str", "required": True},
    "table": {"type": "str", "choices": ["filter", "nat", "mangle", "raw"], "default": "filter"},
    "rules": {"type": "list", "elements": "str", "default": []},
    "jumps": {"type": "list", "elements": "dict", "default": [], "options": {
        "chain": {"type": "str", "required": True},
        "position": {"type": "int", "default": 1},
        "match": {"type": "str", "default": ""},
    }},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "ip_version": {"type": "str", "choices": ["ipv4", "ipv6"], "default": "ipv4"},
    "save_path": {"type": "path"},
}


class ChainError(ValueError):
    """A chain that cannot be brought to what was asked; the message names the chain and the fix."""


class _Chain:
    """One chain's convergence on the host, through the module's run_command (and its check mode)."""

    def __init__(self, module, params: dict):
        self.module, self.params = module, params
        family = "ip6tables" if params["ip_version"] == "ipv6" else "iptables"
        self.save = module.get_bin_path(f"{family}-save", required=True)
        self.restore = module.get_bin_path(f"{family}-restore", required=True)
        self.binary = module.get_bin_path(family, required=True)

    def read(self):
        rc, out, err = self.module.run_command([self.save, "-t", self.params["table"]])
        if rc != 0:
            raise ChainError(f"iptables-save -t {self.params['table']} failed: {err.strip()}")
        return parse_save(out, self.params["chain"])

    def _normal(self, rules):
        try:
            return [normalize_rule(rule, self.params["ip_version"]) for rule in rules]
        except ValueError as exc:
            raise ChainError(f"chain {self.params['chain']}: {exc}") from None

    def _has_jump(self, jumps, jump) -> bool:
        wanted = normalize_rule(jump_rule(jump, self.params["chain"]), self.params["ip_version"])
        return any(normalize_rule(rule, self.params["ip_version"]) == wanted
                   for rule in jumps.get(jump["chain"], []))

    def _stale_jumps(self, jumps) -> list[tuple[str, str]]:
        """Jumps into the chain, from a parent that O(jumps) names, that none of O(jumps) describes (such as
        the jump of an interface no longer given): they are ours, since the chain is."""
        declared = {}
        for jump in self.params["jumps"]:
            declared.setdefault(jump["chain"], set()).add(
                normalize_rule(jump_rule(jump, self.params["chain"]), self.params["ip_version"]))
        return [(parent, rule) for parent, rules in sorted(jumps.items()) if parent in declared for rule in rules
                if normalize_rule(rule, self.params["ip_version"]) not in declared[parent]]

    def _describe(self, exists, rules, jumps):
        """The chain and the jumps into it, as iptables-save lines, for the diff."""
        if not exists:
            return ""
        lines = [f"-A {parent} {rule}" for parent, parent_rules in sorted(jumps.items()) for rule in parent_rules]
        lines += [f"-A {self.params['chain']} {rule}" for rule in rules]
        return "\n".join(lines) + "\n"

    def _apply(self, args, data=None):
        rc, _, err = self.module.run_command(args, data=data, binary_data=True)
        if rc != 0:
            raise ChainError(f"{' '.join(args[:4])} failed: {err.strip()}")

    def keep_copy(self, result, content):
        """Keep content (None: no file) at save_path; report whether that changed anything."""
        path = self.params["save_path"]
        if not path:
            return
        try:
            with open(path) as handle:
                before = handle.read()
        except FileNotFoundError:
            before = None
        result["saved"] = before != content
        if not result["saved"]:
            return
        result["changed"] = True
        if self.module.check_mode:
            return
        if content is None:
            os.remove(path)
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.gymfleet-tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(content)
        self.module.atomic_move(tmp, path)
        os.chmod(path, 0o600)  # atomic_move gives a new file the default mode

    def present(self, result):
        chain, table = self.params["chain"], self.params["table"]
        self.keep_copy(result, "# Managed by gymfleet: the rules of " + chain + ", for iptables-restore --noflush.\n"
                       + restore_payload(table, chain, self.params["rules"], []))
        exists, current, jumps = self.read()
        missing = [jump for jump in self.params["jumps"] if not self._has_jump(jumps, jump)]
        stale = self._stale_jumps(jumps)
        if exists and self._normal(current) == self._normal(self.params["rules"]) and not missing and not stale:
            result["rules"] = current
            return
        payload = restore_payload(table, chain, self.params["rules"], missing, stale)
        after_jumps = {parent: [rule for rule in rules if (parent, rule) not in stale]
                       for parent, rules in jumps.items()}
        for jump in missing:
            after_jumps.setdefault(jump["chain"], []).append(jump_rule(jump, chain))
        result.update(changed=True, payload=payload, rules=self.params["rules"], diff={
            "before": self._describe(exists, current, jumps),
            "after": self._describe(True, self.params["rules"], after_jumps),
        })
        if self.module.check_mode:
            return
        self._apply([self.restore, "--noflush"], data=payload)
        exists, current, _ = self.read()
        if self._normal(current) != self._normal(self.params["rules"]):
            raise ChainError(
                f"chain {chain}: iptables-save shows rules that differ from the ones given, so every run "
                f"would report a change; fix: write the rules as iptables-save prints them: {current}"
            )
        result["rules"] = current

    def observe(self) -> dict:
        chain = self.params["chain"]
        exists, current, jumps = self.read()
        missing = [f"-A {jump['chain']} {jump_rule(jump, chain)}"
                   for jump in self.params["jumps"] if not self._has_jump(jumps, jump)]
        saved = None
        if self.params.get("save_path"):
            try:
                with open(self.params["save_path"]) as handle:
                    saved = parse_save(handle.read(), chain)[1]
            except FileNotFoundError:
                pass
        return {"exists": exists, "rules": len(current), "missing_jumps": missing,
                "drift": None if saved is None else self._normal(current) != self._normal(saved)}

    def absent(self, result):
        chain, table = self.params["chain"], self.params["table"]
        self.keep_copy(result, None)
        exists, current, jumps = self.read()
        result["rules"] = []
        if not exists:
            return
        result.update(changed=True, diff={"before": self._describe(exists, current, jumps), "after": ""})
        if self.module.check_mode:
            return
        for parent, rules in jumps.items():
            for rule in rules:
                self._apply([self.binary, "-t", table, "-D", parent, *shlex.split(rule)])
        self._apply([self.binary, "-t", table, "-F", chain])
        self._apply([self.binary, "-t", table, "-X", chain])


def chain_state(module, params: dict) -> dict:
    """What the host has of one owned chain (CHAIN_OPTIONS, defaults applied), changing nothing: for status.

    Returns exists, rules (how many), missing_jumps (the declared jumps the parents lack, as iptables-save
    would print them) and drift: whether the live rules differ from the copy the last deploy saved at
    save_path (None without a copy to compare with). Raises ChainError when iptables-save fails.
    """
    return _Chain(module, params).observe()


def converge_chain(module, params: dict) -> dict:
    """Bring one chain (CHAIN_OPTIONS, defaults applied) to its state; returns iptables_chain's result
    (changed, rules, and payload, saved and diff when they apply). Raises ChainError."""
    result = {"changed": False}
    getattr(_Chain(module, params), params["state"])(result)
    return result
