import os
import shlex
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gymfleet.cluster.plugins.module_utils.host_probes import run_probe
from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import normalize_rule, parse_save
from ansible_collections.gymfleet.cluster.plugins.modules import iptables_chain

from .modhelper import run_module


class FakeIptables:
    """Test double of iptables-save / iptables-restore --noflush / iptables -D|-F|-X for one table.

    It follows their documented behaviour as checked on a lab host: save prints `:CHAIN` lines, then
    `-A` lines in order, rewriting `-s ADDR` to `-s ADDR/32` and adding `-m tcp` after `-p tcp --dport`;
    restore --noflush flushes only the chains it declares and applies -A, -D and -I in order.
    """

    def __init__(self, chains=None):
        self.chains = {"INPUT": [], "FORWARD": [], "OUTPUT": []}
        self.chains.update(chains or {})
        self.restores = []

    @staticmethod
    def _canonical(rule):
        tokens = shlex.split(rule)
        out = []
        for i, tok in enumerate(tokens):
            out.append(tok)
            if tokens[i - 1] in ("-s", "-d") and "/" not in tok:
                out[-1] = tok + "/32"
            if tok == "tcp" and tokens[i - 1] == "-p" and "--dport" in tokens and "-m" not in tokens:
                out += ["-m", "tcp"]
        return " ".join(out)

    def save(self):
        builtin = ("INPUT", "FORWARD", "OUTPUT")
        lines = ["*filter"] + [f":{c} {'ACCEPT' if c in builtin else '-'} [0:0]" for c in self.chains]
        lines += [f"-A {c} {r}" for c, rules in self.chains.items() for r in rules]
        return "\n".join(lines + ["COMMIT"]) + "\n"

    def __call__(self, args, data=None, **_):
        tool = args[0]
        if tool == "iptables-save":
            return 0, self.save(), ""
        if tool == "iptables-restore":
            self.restores.append(data)
            for line in data.splitlines():
                if line.startswith(":"):
                    self.chains[line[1:].split()[0]] = []
                elif line.startswith("-A "):
                    chain, rule = line[3:].split(" ", 1)
                    self.chains[chain].append(self._canonical(rule))
                elif line.startswith("-D "):
                    chain, rule = line[3:].split(" ", 1)
                    self.chains[chain].remove(rule)
                elif line.startswith("-I "):
                    chain, position, rule = line[3:].split(" ", 2)
                    self.chains[chain].insert(int(position) - 1, rule)
            return 0, "", ""
        if tool == "iptables":
            _, _, _, op, chain, *rest = args
            if op == "-D":
                self.chains[chain].remove(" ".join(rest))
            elif op == "-F":
                self.chains[chain] = []
            elif op == "-X":
                del self.chains[chain]
            return 0, "", ""
        raise AssertionError(f"unexpected command {args}")


RULES = ["-s 10.0.0.1 -p tcp --dport 6379 -j ACCEPT", "-p tcp --dport 6379 -j DROP"]


def run(fake, check_mode=False, **args):
    args.setdefault("chain", "GYMFLEET-INPUT")
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = True
    with mock.patch.object(AnsibleModule, "run_command", side_effect=fake), \
            mock.patch.object(AnsibleModule, "get_bin_path", side_effect=lambda name, **_: name):
        return run_module(iptables_chain.main, args)


def test_creates_chain_and_jump_then_is_idempotent():
    fake = FakeIptables({"DOCKER-USER": ["-j RETURN"]})
    first = run(fake, rules=RULES, jumps=[{"chain": "INPUT"}])
    assert first["changed"] is True
    assert fake.chains["INPUT"] == ["-j GYMFLEET-INPUT"]
    assert fake.chains["GYMFLEET-INPUT"] == ["-s 10.0.0.1/32 -p tcp -m tcp --dport 6379 -j ACCEPT",
                                             "-p tcp -m tcp --dport 6379 -j DROP"]
    assert "+-s 10.0.0.1" not in first["diff"]["before"]
    second = run(fake, rules=RULES, jumps=[{"chain": "INPUT"}])
    assert second["changed"] is False
    assert len(fake.restores) == 1
    assert fake.chains["DOCKER-USER"] == ["-j RETURN"]  # another owner's chain is untouched


def test_check_mode_reports_change_and_applies_nothing():
    fake = FakeIptables()
    result = run(fake, check_mode=True, rules=RULES, jumps=[{"chain": "INPUT"}])
    assert result["changed"] is True
    assert "-I INPUT 1 -j GYMFLEET-INPUT" in result["payload"]
    assert "-A GYMFLEET-INPUT -p tcp --dport 6379 -j DROP" in result["diff"]["after"]
    assert fake.restores == [] and "GYMFLEET-INPUT" not in fake.chains


def test_changed_rules_replace_the_chain_without_a_second_jump():
    fake = FakeIptables()
    run(fake, rules=RULES, jumps=[{"chain": "INPUT"}])
    fake.chains["INPUT"].append("-j OTHER")
    result = run(fake, rules=RULES[:1], jumps=[{"chain": "INPUT"}])
    assert result["changed"] is True
    assert fake.chains["INPUT"] == ["-j GYMFLEET-INPUT", "-j OTHER"]
    assert "-I INPUT" not in fake.restores[-1]
    assert fake.chains["GYMFLEET-INPUT"] == ["-s 10.0.0.1/32 -p tcp -m tcp --dport 6379 -j ACCEPT"]


def test_a_jump_no_longer_declared_is_replaced_and_others_stay():
    fake = FakeIptables()
    run(fake, rules=RULES, jumps=[{"chain": "INPUT", "match": "-i tailscale0"}])
    fake.chains["INPUT"].append("-j OTHER")
    fake.chains["FORWARD"].append("-j GYMFLEET-INPUT")  # a parent the declaration does not name: not ours to judge
    result = run(fake, rules=RULES, jumps=[{"chain": "INPUT", "match": "-i tailscale1"}])
    assert result["changed"] is True
    assert "-D INPUT -i tailscale0 -j GYMFLEET-INPUT" in result["payload"]
    assert "-i tailscale0" not in result["diff"]["after"] and "-A INPUT -i tailscale1" in result["diff"]["after"]
    assert fake.chains["INPUT"] == ["-i tailscale1 -j GYMFLEET-INPUT", "-j OTHER"]
    assert fake.chains["FORWARD"] == ["-j GYMFLEET-INPUT"]
    assert run(fake, rules=RULES, jumps=[{"chain": "INPUT", "match": "-i tailscale1"}])["changed"] is False


def test_absent_removes_jumps_and_chain_only():
    fake = FakeIptables()
    run(fake, rules=RULES, jumps=[{"chain": "INPUT"}])
    fake.chains["INPUT"].append("-j OTHER")
    assert run(fake, state="absent")["changed"] is True
    assert "GYMFLEET-INPUT" not in fake.chains
    assert fake.chains["INPUT"] == ["-j OTHER"]
    assert run(fake, state="absent")["changed"] is False


def test_rule_that_saves_differently_fails_with_the_fix():
    class Rewriting(FakeIptables):
        @staticmethod
        def _canonical(rule):
            return rule + " --reject-with icmp-port-unreachable"

    result = run(Rewriting(), rules=["-j REJECT"])
    assert result["failed"] is True
    assert "write the rules as iptables-save prints them" in result["msg"]


@pytest.mark.parametrize(
    ("written", "saved"),
    [
        ("-p tcp --dport 22 -s 1.2.3.4 -j ACCEPT", "-s 1.2.3.4/32 -p tcp -m tcp --dport 22 -j ACCEPT"),
        ("--source 1.2.3.0/24 --jump DROP", "-s 1.2.3.0/24 -j DROP"),
        ("! -i lo -j RETURN", "! -i lo -j RETURN"),
    ],
)
def test_normalize_matches_saved_forms(written, saved):
    assert normalize_rule(written) == normalize_rule(saved)


def test_normalize_keeps_meaningful_differences():
    assert normalize_rule("-i lo -j ACCEPT") != normalize_rule("! -i lo -j ACCEPT")
    assert normalize_rule("--dport 1 -j ACCEPT") != normalize_rule("--dport 2 -j ACCEPT")


def test_parse_save_finds_jumps_from_any_chain():
    exists, rules, jumps = parse_save(
        "*filter\n:INPUT ACCEPT [0:0]\n:MINE - [0:0]\n-A INPUT -p tcp -j MINE\n-A FORWARD -j MINE\n"
        "-A MINE -j RETURN\n-A INPUT -j MINE2\nCOMMIT\n", "MINE")
    assert exists and rules == ["-j RETURN"]
    assert jumps == {"INPUT": ["-p tcp -j MINE"], "FORWARD": ["-j MINE"]}


def test_save_path_keeps_what_was_applied(tmp_path):
    fake = FakeIptables()
    saved = tmp_path / "firewall" / "GYMFLEET-INPUT.rules"
    checked = run(fake, check_mode=True, rules=RULES, save_path=str(saved))
    assert checked["changed"] is True and checked["saved"] is True and not saved.exists()
    first = run(fake, rules=RULES, jumps=[{"chain": "INPUT"}], save_path=str(saved))
    assert first["saved"] is True and oct(saved.stat().st_mode & 0o777) == "0o600"
    text = saved.read_text()
    assert "\n-A GYMFLEET-INPUT -p tcp --dport 6379 -j DROP\n" in text and "-I INPUT" not in text
    # What the boot unit restores is what the module applies: replaying it rebuilds the same chain.
    replay = FakeIptables()
    replay(["iptables-restore", "--noflush"], data=text)
    assert replay.chains["GYMFLEET-INPUT"] == fake.chains["GYMFLEET-INPUT"]
    again = run(fake, rules=RULES, jumps=[{"chain": "INPUT"}], save_path=str(saved))
    assert again["changed"] is False and again["saved"] is False
    removed = run(fake, state="absent", save_path=str(saved))
    assert removed["changed"] is True and not saved.exists()


class ChainsModule:
    """What the services engine's converge_chains uses of AnsibleModule, over FakeIptables."""

    def __init__(self, fake, state, chains, check_mode=False):
        self.run_command = fake
        self.check_mode, self._diff = check_mode, True
        self.params = {"state": state, "chains": [{"table": "filter", "rules": [], "jumps": [], "state": "present",
                                                   "ip_version": "ipv4", "save_path": None, **c} for c in chains]}

    @staticmethod
    def get_bin_path(name, **_):
        return name

    @staticmethod
    def atomic_move(src, dest):
        os.replace(src, dest)


def test_the_services_engine_lays_out_a_components_chains_and_removes_them_with_it(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.modules.services import converge_chains

    fake = FakeIptables({"DOCKER": ["-j RETURN"]})
    saved = tmp_path / "GYMFLEET-INPUT.rules"
    chain = {"chain": "GYMFLEET-INPUT", "rules": RULES, "jumps": [{"chain": "INPUT"}], "save_path": str(saved)}
    reports, diffs = converge_chains(ChainsModule(fake, "started", [chain]))
    assert [(r["chain"], r["table"], r["changed"], r["saved"]) for r in reports] == [
        ("GYMFLEET-INPUT", "filter", True, True)]
    assert diffs[0]["after_header"] == "filter GYMFLEET-INPUT" and "-j DROP" in diffs[0]["after"]
    assert fake.chains["INPUT"] == ["-j GYMFLEET-INPUT"] and saved.exists()
    assert converge_chains(ChainsModule(fake, "started", [chain])) == (
        [{"chain": "GYMFLEET-INPUT", "table": "filter", "changed": False, "saved": False,
          "rules": fake.chains["GYMFLEET-INPUT"]}], [])
    # Probing changes nothing and reads nothing; the component's removal takes its chain whatever the entry says.
    restores = len(fake.restores)
    assert converge_chains(ChainsModule(fake, "probed", [chain])) == ([], [])
    removed, _ = converge_chains(ChainsModule(fake, "absent", [chain]))
    assert removed[0]["changed"] is True and len(fake.restores) == restores
    assert "GYMFLEET-INPUT" not in fake.chains and fake.chains["INPUT"] == [] and not saved.exists()
    assert fake.chains["DOCKER"] == ["-j RETURN"]


class ProbeModule(ChainsModule):
    """What the status probe uses of AnsibleModule: run_command and get_bin_path (None for a missing program)."""

    def __init__(self, fake, programs=("iptables", "iptables-save", "iptables-restore")):
        super().__init__(fake, "present", [])
        self.programs = programs

    def get_bin_path(self, name, **_):
        return name if name in self.programs else None


def test_the_status_probe_reads_a_chain_against_its_jumps_and_the_saved_copy(tmp_path):
    fake = FakeIptables()
    saved = tmp_path / "GYMFLEET-INPUT.rules"
    run(fake, rules=RULES, jumps=[{"chain": "INPUT"}], save_path=str(saved))
    probe = {"iptables_chain": {"chain": "GYMFLEET-INPUT", "jumps": [{"chain": "INPUT"}], "save_path": str(saved)}}
    assert run_probe(ProbeModule(fake), "GYMFLEET-INPUT", probe, 5) == {
        "exists": True, "rules": 2, "missing_jumps": [], "drift": False}
    fake.chains["INPUT"].remove("-j GYMFLEET-INPUT")
    fake.chains["GYMFLEET-INPUT"].pop()
    assert run_probe(ProbeModule(fake), "GYMFLEET-INPUT", probe, 5) == {
        "exists": True, "rules": 1, "missing_jumps": ["-A INPUT -j GYMFLEET-INPUT"], "drift": True}
    saved.unlink()  # nothing to compare with: drift is unknown, not "no drift"
    assert run_probe(ProbeModule(fake), "GYMFLEET-INPUT", probe, 5)["drift"] is None
    del fake.chains["GYMFLEET-INPUT"]
    assert run_probe(ProbeModule(fake), "GYMFLEET-INPUT", probe, 5)["exists"] is False
    assert run_probe(ProbeModule(fake, programs=()), "GYMFLEET-INPUT", probe, 5) == {
        "error": "iptables is not installed"}
    assert fake.restores == [fake.restores[0]]  # the probe changed nothing
