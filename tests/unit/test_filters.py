import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.firewall import (
    chain_name_problems,
    firewall_rules,
    firewall_status_checks,
    tailnet_guard_rules,
)
from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import (
    components_for,
    group_size_problems,
    shared_value_problems,
)
from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import (
    omniboxes_host_problems,
    omniboxes_topology_problems,
)
from ansible_collections.gymfleet.cluster.plugins.filter.ports import (
    claims_from,
    invalid_ports,
    port_conflicts,
)
from ansible_collections.gymfleet.cluster.plugins.filter.table import text_table


def claim(component, ports, proto="tcp"):
    return {"component": component, "variable": f"{component}_port", "ports": ports, "proto": proto}


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        (6379, 6379, True),
        (6379, 6380, False),
        ([9000, 9111], 9111, True),
        ([9000, 9111], 9112, False),
        ([9000, 9111], [8000, 9000], True),
        ([9111, 9000], 9050, True),  # a reversed range is still a range
    ],
)
def test_port_conflicts_finds_overlaps(first, second, overlap):
    problems = port_conflicts([claim("a", first), claim("b", second)])
    assert bool(problems) is overlap
    if overlap:
        assert "a (a_port = " in problems[0] and "b (b_port = " in problems[0]


def test_port_conflicts_ignores_other_protocols():
    assert port_conflicts([claim("a", 53), claim("b", 53, proto="udp")]) == []


def test_invalid_ports():
    assert invalid_ports([claim("a", 0), claim("b", 70000), claim("c", 80)]) == [
        "a (a_port = 0) is outside 1-65535",
        "b (b_port = 70000) is outside 1-65535",
    ]


def test_ports_given_as_text_are_numbers():
    # Every INI [all:vars] value is text: "6379" is port 6379, not the range of its first and last characters.
    assert port_conflicts([claim("a", "6379"), claim("b", 6379)]) == [
        "a (a_port = 6379) overlaps b (b_port = 6379)"]
    assert port_conflicts([claim("a", ["9000", "9111"]), claim("b", "9") ]) == []
    assert invalid_ports([claim("a", "8080"), claim("b", [" 9000", "9111"])]) == []


def test_ports_that_are_not_numbers_are_named():
    assert invalid_ports([claim("a", "http"), claim("b", ["9000", "x"]), claim("c", True)]) == [
        "a (a_port = 'http') is not a port number",
        "b (b_port = ['9000', 'x']) is not a port number",
        "c (c_port = True) is not a port number",
    ]
    assert port_conflicts([claim("a", "http"), claim("b", 80)]) == []


def test_claims_from_names_each_item():
    claims = claims_from([{"port": 6379}, {"port": 6380}], "port", "redis instance", "redis_instances")
    assert claims[1] == {"component": "redis instance", "variable": "redis_instances[1].port", "ports": 6380}
    ports = claims_from([8000, 8001], "", "openenv environment server", "openenv_ports")
    assert ports[1] == {"component": "openenv environment server", "variable": "openenv_ports[1]", "ports": 8001}


@pytest.mark.parametrize(("name", "words"), [
    ("INPUT", "firewall_chain is INPUT, a built-in chain"),
    ("DOCKER-USER", "firewall_chain is DOCKER-USER, a chain that Docker owns"),
    ("ts-input", "firewall_chain is ts-input, a chain that Tailscale owns"),
    ("f2b-sshd", "a chain that fail2ban owns"),
    ("MY CHAIN", "firewall_chain is 'MY CHAIN', which iptables refuses as a chain name"),
    ("G" * 29, "which iptables refuses as a chain name"),
])
def test_chain_names_that_someone_else_owns_are_refused(name, words):
    problems = chain_name_problems({"firewall_chain": name})
    assert len(problems) == 1 and words in problems[0] and "fix:" in problems[0], problems


def test_chain_names_of_our_own():
    assert chain_name_problems({"snat_chain": "GYMFLEET-SNAT", "snat_forward_chain": "GYMFLEET-FORWARD",
                                "firewall_chain": "G" * 28}) == []
    assert chain_name_problems({"snat_chain": "GF", "snat_forward_chain": "GF"}) == [
        "snat_chain and snat_forward_chain are both GF, so each would replace the other's rules; fix: give each its "
        "own chain"]


def test_firewall_rules_order_and_merge():
    rules = firewall_rules(
        [{"ports": 6379}, {"ports": [9000, 9003]}, {"ports": 6379}, {"ports": 53, "proto": "udp"}],
        ["10.0.0.1", "10.0.0.2/32", "192.168.0.0/24"],
    )
    assert rules == [
        "-i lo -p tcp -m multiport --dports 6379,9000:9003 -j ACCEPT",
        "-s 10.0.0.1/32 -p tcp -m multiport --dports 6379,9000:9003 -j ACCEPT",
        "-s 10.0.0.2/32 -p tcp -m multiport --dports 6379,9000:9003 -j ACCEPT",
        "-s 192.168.0.0/24 -p tcp -m multiport --dports 6379,9000:9003 -j ACCEPT",
        "-p tcp -m multiport --dports 6379,9000:9003 -j DROP",
        "-i lo -p udp -m multiport --dports 53 -j ACCEPT",
        "-s 10.0.0.1/32 -p udp -m multiport --dports 53 -j ACCEPT",
        "-s 10.0.0.2/32 -p udp -m multiport --dports 53 -j ACCEPT",
        "-s 192.168.0.0/24 -p udp -m multiport --dports 53 -j ACCEPT",
        "-p udp -m multiport --dports 53 -j DROP",
    ]


def test_firewall_rules_do_not_depend_on_the_claims_order():
    claims = [{"ports": 9901}, {"ports": [10002, 10999]}, {"ports": 6704}, {"ports": 8000}, {"ports": 9092}]
    assert firewall_rules(claims, ["10.0.0.1"]) == firewall_rules(claims[::-1], ["10.0.0.1"])
    first = firewall_rules(claims, [])[0]
    assert first == "-i lo -p tcp -m multiport --dports 6704,8000,9092,9901,10002:10999 -j ACCEPT"


def test_firewall_rules_split_multiport_groups():
    rules = firewall_rules([{"ports": p} for p in range(1000, 1010)], [], action="REJECT")
    reject = "-j REJECT --reject-with tcp-reset"
    assert rules[1] == f"-p tcp -m multiport --dports 1000,1001,1002,1003,1004,1005,1006 {reject}"
    assert rules[3] == f"-p tcp -m multiport --dports 1007,1008,1009 {reject}"


def test_tailnet_guard_rules_let_members_go_on_and_drop_the_rest():
    rules = tailnet_guard_rules([{"ports": 6379}, {"ports": 53, "proto": "udp"}, {"ports": 6379}],
                                ["100.64.0.7", "100.64.0.7/32", "100.64.0.9"])
    assert rules == [
        "-s 100.64.0.7/32 -p tcp -m multiport --dports 6379 -j RETURN",
        "-s 100.64.0.9/32 -p tcp -m multiport --dports 6379 -j RETURN",
        "-p tcp -m multiport --dports 6379 -j DROP",
        "-s 100.64.0.7/32 -p udp -m multiport --dports 53 -j RETURN",
        "-s 100.64.0.9/32 -p udp -m multiport --dports 53 -j RETURN",
        "-p udp -m multiport --dports 53 -j DROP",
    ]
    # No loopback rule: the jump matches only the tailnet interface. No ACCEPT either: it would skip the
    # filter table's rules and any later mangle rule of the administrator's.
    assert not [rule for rule in rules if "-i lo" in rule or "ACCEPT" in rule]


def test_tailnet_guard_rules_cover_the_same_ports_as_the_chain():
    claims = [{"ports": p} for p in range(1000, 1010)]
    matches = {rule.split(" -j ")[0] for rule in firewall_rules(claims, [], "REJECT") if not rule.startswith("-i lo")}
    assert matches == {rule.split(" -j ")[0] for rule in tailnet_guard_rules(claims, [])}


def test_firewall_status_checks_probe_each_chain_and_its_saved_copy_only_when_persisted():
    chains = [{"chain": "GYMFLEET-INPUT", "jumps": [{"chain": "INPUT"}], "save_path": "/etc/a.rules"},
              {"chain": "GYMFLEET-TAILNET", "table": "mangle", "jumps": [{"chain": "INPUT", "match": "-i ts0"}],
               "save_path": "/etc/b.rules"}]
    [check] = firewall_status_checks(chains, "gymfleet-firewall")
    assert check["row"] == {"judge": "firewall", "system": "firewall", "component": "firewall",
                            "chains": ["GYMFLEET-INPUT", "GYMFLEET-TAILNET"], "boot_unit": "gymfleet-firewall"}
    assert check["probes"]["GYMFLEET-TAILNET"] == {"iptables_chain": {
        "chain": "GYMFLEET-TAILNET", "table": "mangle", "jumps": [{"chain": "INPUT", "match": "-i ts0"}],
        "save_path": "/etc/b.rules"}}
    # Not persisted: a rules file left from before says nothing about what the last deploy applied.
    [unsaved] = firewall_status_checks(chains, "")
    assert all("save_path" not in probe["iptables_chain"] for probe in unsaved["probes"].values())
    assert firewall_status_checks([], "gymfleet-firewall") == []


@pytest.mark.parametrize("bad", [{"action": "ACCEPT"}, {"sources": ["fe80::1"]}, {"sources": ["not-an-ip"]}])
def test_firewall_rules_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        firewall_rules([{"ports": 1}], bad.get("sources", []), bad.get("action", "DROP"))


def test_group_size_problems():
    groups = {"head": ["a", "b"], "workers": []}
    problems = group_size_problems(
        [{"group": "head", "exactly": 1}, {"group": "workers", "min": 1}, {"group": "gone", "max": 2},
         {"group": "head", "min": 1, "max": 3}],
        groups,
    )
    assert problems == [
        "inventory: group head has 2 hosts but needs exactly 1; fix: change the hosts in [head]",
        "inventory: group workers has 0 hosts but needs at least 1; fix: change the hosts in [workers]",
    ]


def test_shared_value_problems():
    problems = shared_value_problems({"b": "node1", "a": "node1", "c": "node2", "d": ""}, "hostname", "rename one")
    assert problems == ["hosts a and b share the hostname node1; fix: rename one"]


def test_components_for():
    components = [{"role": "redis", "groups": ["redis"]}, {"role": "fw", "groups": ["cluster", "edge"]}]
    assert [c["role"] for c in components_for(components, ["edge"])] == ["fw"]
    assert components_for(components, ["other"]) == []


def test_text_table():
    table = text_table([{"host": "n1", "state": "up"}, {"host": "node-22", "state": None}], ["host", "state"])
    assert table.splitlines() == ["HOST     STATE", "n1       up", "node-22  -"]


def test_redis_unprotected_ports():
    from ansible_collections.gymfleet.cluster.plugins.filter.redis import redis_unprotected_ports

    instances = [{"port": 6379, "protected_mode": False}, {"port": 6380}, {"port": 6381, "protected_mode": False,
                                                                          "bind_cluster_address": False}]
    assert redis_unprotected_ports(instances, True, True, False) == [6379]
    assert redis_unprotected_ports(instances, False, True, False) == [6379, 6380]
    assert redis_unprotected_ports(instances, False, False, False) == []
    assert redis_unprotected_ports(instances, False, False, True) == [6379, 6380, 6381]


def omnibox(host, master=False, worker=True, hostname=None, url=None):
    return {"host": host, "master": master, "worker": worker, "hostname": hostname or host,
            "url": url or f"http://{host}:8080"}


def test_omniboxes_topology_a_good_one():
    nodes = [omnibox("a", master=True), omnibox("b"), omnibox("c")]
    groups = {"omniboxes_master": ["a"], "omniboxes_worker": ["a", "b", "c"]}
    assert omniboxes_topology_problems(nodes, groups, "omniboxes_master", "omniboxes_worker") == []


def test_omniboxes_topology_counts_masters_from_the_inventory_not_the_play():
    # A run limited to worker b still knows that a is the master.
    groups = {"omniboxes_master": ["a"], "omniboxes_worker": ["a", "b"]}
    assert omniboxes_topology_problems([omnibox("b")], groups, "omniboxes_master", "omniboxes_worker") == []
    assert omniboxes_topology_problems([omnibox("b")], {"omniboxes_worker": ["b"]}, "omniboxes_master",
                                       "omniboxes_worker") == [
        "inventory: hosts b are in omniboxes_worker but no host is in omniboxes_master, so no master would "
        "discover them; fix: put one host in [omniboxes_master] (in both groups for mode both)"]


def test_omniboxes_topology_two_masters():
    groups = {"omniboxes_master": ["b", "a"], "omniboxes_worker": []}
    problems = omniboxes_topology_problems([], groups, "omniboxes_master", "omniboxes_worker")
    assert problems == ["inventory: hosts a and b are all in omniboxes_master, but OmniBoxes has exactly one master; "
                        "fix: keep one host in [omniboxes_master] and list the others in [omniboxes_worker] only"]


def test_omniboxes_topology_registering_workers_must_differ():
    nodes = [omnibox("m", master=True, hostname="same", url="http://10.0.0.9:8080"),
             omnibox("b", hostname="same", url="http://10.0.0.9:8080"),
             omnibox("c", hostname="same", url="http://10.0.0.9:8080")]
    groups = {"omniboxes_master": ["m"], "omniboxes_worker": ["m", "b", "c"]}
    problems = omniboxes_topology_problems(nodes, groups, "omniboxes_master", "omniboxes_worker")
    # The master in mode both is known by its static URL and never registers, so only b and c clash.
    assert len(problems) == 2
    assert problems[0].startswith("hosts b and c share the OmniBoxes registry hostname same; fix:")
    assert problems[1].startswith("hosts b and c share the OmniBoxes node URL http://10.0.0.9:8080; fix:")


def test_firewall_rules_through_one_interface():
    from ansible_collections.gymfleet.cluster.plugins.filter.firewall import firewall_rules
    assert firewall_rules([{"ports": 6379}], ["100.64.0.7"], "DROP", "tailscale0") == [
        "-i lo -p tcp -m multiport --dports 6379 -j ACCEPT",
        "-i tailscale0 -s 100.64.0.7/32 -p tcp -m multiport --dports 6379 -j ACCEPT",
        "-p tcp -m multiport --dports 6379 -j DROP"]


OMNIBOXES_HOST = {"is_worker": True, "is_master": False, "instances": 2, "worker_group": "omniboxes_worker",
                  "advertise_ip": "10.0.0.2", "advertise_url": "http://10.0.0.2:7000", "master_host": "m",
                  "master_redis_host": "10.0.0.1", "master_redis_port": 6380, "behind_firewall": True,
                  "firewall_group": "cluster", "source": "pip",
                  "sources": {"pip": "webgym[omnibox]==1.0", "git": "", "path": ""}, "extra": "omnibox",
                  "browser": "system", "browser_executable": "", "environment": {}, "advertise_given": "",
                  "host_addresses": ["10.0.0.2", "172.17.0.1"]}


def test_omniboxes_host_problems_a_good_worker_and_each_mistake(tmp_path):
    assert omniboxes_host_problems(OMNIBOXES_HOST) == []
    cases = [({"instances": 0}, "omniboxes_instances is 0 but the host is in omniboxes_worker"),
             ({"advertise_ip": "127.0.0.1"}, "which the master cannot reach"),
             ({"master_redis_host": "localhost"}, "the registry Redis would be localhost"),
             ({"is_master": True, "behind_firewall": False}, "must sit behind the firewall; fix: keep this host"),
             ({"source": "git"}, "omniboxes_source is git but omniboxes_git_repo is empty"),
             ({"source": "path", "sources": {"path": str(tmp_path)}}, "has no omniboxes/ package on the controller"),
             ({"sources": {"pip": "webgym==1.0"}}, "does not ask for the extra 'omnibox', so upstream's server "
                                                   "requirements would not be installed; fix: write it as "
                                                   "'webgym[omnibox]==1.0'"),
             ({"sources": {"pip": "webgym[train] @ git+https://example.invalid/w"}},
              "fix: write it as 'webgym[train,omnibox] @ git+https://example.invalid/w'"),
             ({"browser": "path"}, "omniboxes_browser is path but omniboxes_browser_executable is empty"),
             ({"browser": "path", "browser_executable": "chromium"}, "omniboxes_browser_executable is chromium"),
             ({"environment": {"PLAYWRIGHT_BROWSERS_PATH": "/x"}}, "set omniboxes_browsers_path instead"),
             ({"advertise_given": "10.0.0.9", "advertise_ip": "10.0.0.9"},
              "omniboxes_advertise_ip 10.0.0.9 is on no interface of this host (10.0.0.2, 172.17.0.1); fix: set it")]
    for change, words in cases:
        problems = omniboxes_host_problems({**OMNIBOXES_HOST, **change})
        assert len(problems) == 1 and words in problems[0] and "fix:" in problems[0], (change, problems)
    assert omniboxes_host_problems({**OMNIBOXES_HOST, "sources": {"pip": "webgym[train, omnibox]>=1"}}) == []
    assert omniboxes_host_problems({**OMNIBOXES_HOST, "advertise_given": "172.17.0.1"}) == []
    assert omniboxes_host_problems({**OMNIBOXES_HOST, "browser": "path", "browser_executable": "/opt/c/chrome"}) == []
    # A master alone launches no browser, so its browser settings do not matter.
    assert omniboxes_host_problems({**OMNIBOXES_HOST, "is_worker": False, "is_master": True, "browser": "path"}) == []
    (tmp_path / "omniboxes").mkdir()
    (tmp_path / "omniboxes" / "__init__.py").write_text("")
    path_source = {**OMNIBOXES_HOST, "source": "path", "sources": {"path": str(tmp_path)}}
    problems = omniboxes_host_problems(path_source)
    assert len(problems) == 1 and "has no setup.py or pyproject.toml" in problems[0], problems
    (tmp_path / "setup.py").write_text("import setuptools\n")
    assert omniboxes_host_problems(path_source) == []


def test_omniboxes_project_copies_what_pip_builds_from_and_digests_its_metadata(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_project
    assert omniboxes_project("", "/opt/src") == {"files": [], "copies": [], "digest": ""}
    (tmp_path / "omniboxes").mkdir()
    for name, text in [("setup.py", "setup()\n"), ("README.md", "# w\n"), ("LICENSE.txt", "MIT\n"), ("notes.txt", "")]:
        (tmp_path / name).write_text(text)
    project = omniboxes_project(str(tmp_path), "/opt/src")
    assert project["files"] == ["setup.py", "README.md", "LICENSE.txt"]
    assert project["copies"][-1] == {"src": f"{tmp_path}/omniboxes", "dest": "/opt/src/omniboxes"}
    assert {"src": f"{tmp_path}/README.md", "dest": "/opt/src/README.md"} in project["copies"]
    # Only build metadata counts: a README change does not reinstall, a setup.py change does.
    (tmp_path / "README.md").write_text("# changed\n")
    assert omniboxes_project(str(tmp_path), "/opt/src")["digest"] == project["digest"]
    (tmp_path / "setup.py").write_text("setup(name='x')\n")
    assert omniboxes_project(str(tmp_path), "/opt/src")["digest"] != project["digest"]


def test_omniboxes_requirements_install_the_package_with_its_extra():
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_requirements
    settings = {"source": "git", "pip_spec": "", "code_dir": "/opt/src", "extra": "omnibox", "revision": "abc123",
                "packages": ["uvloop==0.21.0"]}
    assert omniboxes_requirements(settings) == ["-e /opt/src[omnibox]", "# source revision abc123", "uvloop==0.21.0"]
    assert omniboxes_requirements({**settings, "revision": "", "packages": []}) == ["-e /opt/src[omnibox]"]
    assert omniboxes_requirements({**settings, "source": "pip", "pip_spec": "webgym[omnibox]==1.0"}) == [
        "webgym[omnibox]==1.0", "uvloop==0.21.0"]


def test_omniboxes_browser_plan_names_each_workers_browser():
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_browser_plan
    assert omniboxes_browser_plan([
        {"host": "m", "worker": False, "browser": "system", "executable": "/usr/bin/chromium"},
        {"host": "a", "worker": True, "browser": "system", "executable": "/usr/bin/chromium"},
        {"host": "b", "worker": True, "browser": "playwright", "executable": ""},
    ]) == ["host a: Debian's chromium package (/usr/bin/chromium)",
           "host b: Playwright's own Chromium (playwright install --with-deps chromium)"]
    # The master's own checks do not apply to a node that is master and worker at once.
    assert omniboxes_host_problems({**OMNIBOXES_HOST, "is_master": True, "advertise_ip": ""}) == []


def test_firewall_rules_refusing_others_keep_members_replies_ssh_and_public_ports():
    rules = firewall_rules([{"ports": 6379}], ["10.0.0.1"], "DROP", public_ports=[{"ports": 10000}],
                           refuse_others=True, ssh_ports=[22, 2222], trusted_interfaces=["docker0", "br-+"])
    assert rules == [
        # Public first: a claimed port declared public too is open to everyone.
        "-p tcp -m multiport --dports 10000 -j RETURN",
        "-i lo -p tcp -m multiport --dports 6379 -j ACCEPT",
        "-s 10.0.0.1/32 -p tcp -m multiport --dports 6379 -j ACCEPT",
        "-p tcp -m multiport --dports 6379 -j DROP",
        "-i lo -j RETURN", "-i docker0 -j RETURN", "-i br-+ -j RETURN",
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "-p icmp -j RETURN",
        "-p udp --sport 67 --dport 68 -j RETURN",
        "-p tcp -m multiport --dports 22,2222,10000 -j RETURN",
        "-s 10.0.0.1/32 -j RETURN",
        "-j DROP",
    ]
    # Nothing else is let in for good: the administrator's INPUT rules still see members' other traffic.
    assert [rule for rule in rules if rule.endswith("ACCEPT")] == rules[1:3]


def test_firewall_rules_refusing_others_reject_tcp_with_a_reset_and_the_rest_with_icmp():
    rules = firewall_rules([], [], "REJECT", "tailscale0", refuse_others=True)
    assert rules[-2:] == ["-p tcp -j REJECT --reject-with tcp-reset", "-j REJECT --reject-with icmp-port-unreachable"]
    assert firewall_rules([], [], "DROP") == []


def test_tailnet_guard_rules_refusing_others_drop_every_other_port_from_strangers():
    rules = tailnet_guard_rules([{"ports": 6379}], ["100.64.0.7"], refuse_others=True, ssh_ports=[22])
    assert rules[-4:] == ["-p udp --sport 67 --dport 68 -j RETURN", "-p tcp -m multiport --dports 22 -j RETURN",
                          "-s 100.64.0.7/32 -j RETURN", "-j DROP"]
    assert not [rule for rule in rules if "ACCEPT" in rule or "-i " in rule]


def test_refusal_rules_survive_iptables_save_normalization():
    from ansible_collections.gymfleet.cluster.plugins.module_utils.iptables import normalize_rule
    saved = ["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "-p udp -m udp --sport 67 --dport 68 -j RETURN",
             "-j REJECT --reject-with icmp-port-unreachable"]
    ours = firewall_rules([], [], "REJECT", refuse_others=True)
    assert {normalize_rule(rule) for rule in saved} <= {normalize_rule(rule) for rule in ours}


def test_omniboxes_port_claims_follow_the_hosts_roles():
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_port_claims
    settings = {"is_worker": True, "is_master": True, "instances": "3", "instance_start_port": "9000",
                "node_port": 8080, "redis_port": 6479, "master_port": 7000, "master_redis_port": 6380}
    claims = omniboxes_port_claims(settings)
    assert [(claim["variable"], claim["ports"]) for claim in claims] == [
        ("omniboxes_instance_start_port + omniboxes_instances", [9000, 9002]), ("omniboxes_node_port", 8080),
        ("omniboxes_redis_port", 6479), ("omniboxes_master_port", 7000), ("omniboxes_master_redis_port", 6380)]
    # A worker without instances runs no node server; a worker alone has no master ports.
    assert omniboxes_port_claims({**settings, "instances": 0, "is_master": False}) == []
    assert len(omniboxes_port_claims({**settings, "is_master": False})) == 3


def test_cluster_problems_name_shared_hostnames_and_addresses_then_group_sizes():
    from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import cluster_problems
    hostvars = {"a": {"ansible_facts": {"hostname": "node"}, "cluster_address": "10.0.0.1"},
                "b": {"ansible_facts": {"hostname": "node"}, "cluster_address": "10.0.0.1"},
                "c": {"ansible_facts": {}}}
    problems = cluster_problems(["a", "b", "c"], hostvars, [{"group": "head", "exactly": 1}], {"head": []})
    assert [problem.split(";")[0] for problem in problems] == [
        "hosts a and b share the hostname node", "hosts a and b share the cluster address 10.0.0.1",
        "inventory: group head has 0 hosts but needs exactly 1"]
    assert cluster_problems(["c"], hostvars, [], {}) == []


def test_the_port_plan_is_the_same_file_whatever_order_the_claims_came_in():
    import json

    from ansible_collections.gymfleet.cluster.plugins.filter.firewall import firewall_port_plan
    claims = [{"ports": 8080, "component": "node"}, {"ports": [9000, 9001], "component": "instances"},
              {"ports": 8080, "component": "node"}]
    text = firewall_port_plan(claims, [{"ports": 443}])
    assert text == firewall_port_plan(claims[::-1], [{"ports": 443}])
    plan = json.loads(text)
    assert len(plan) == 3 and {entry["exposure"] for entry in plan} == {"members", "public"}
    assert all(entry["proto"] == "tcp" for entry in plan)


def test_openenv_host_problems(tmp_path):
    from ansible_collections.gymfleet.cluster.plugins.filter.openenv import openenv_host_problems
    settings = {"source": "path", "pip_spec": "", "git_repo": "", "local_path": str(tmp_path), "ports": [8001]}
    [no_app] = openenv_host_problems(settings)
    assert no_app == (f"openenv_local_path {tmp_path} has no server/app.py on the controller; fix: point it at the "
                      "environment project (what openenv init made)")
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "app.py").write_text("app = None\n")
    assert openenv_host_problems(settings) == []
    assert openenv_host_problems({**settings, "source": "git", "ports": []}) == [
        "openenv_source is git but openenv_git_repo is empty; fix: set it",
        "openenv_ports is empty; fix: give at least one port (the runbook uses 8000)"]


def test_firewall_members_and_sources():
    from ansible_collections.gymfleet.cluster.plugins.filter.firewall import firewall_member_problems, firewall_sources
    hostvars = {"a": {"cluster_address": "10.0.0.1", "docker_bridge_subnet": "172.18.1.0/24"},
                "b": {"cluster_address": "10.0.0.2"}, "c": {}, "outside": {"docker_bridge_subnet": "172.18.9.0/24"}}
    assert firewall_member_problems(["a", "b"], hostvars, "cluster") == []
    assert firewall_member_problems([], hostvars, "cluster") == [
        "group cluster (firewall_members_group) is empty; fix: add the cluster hosts to it"]
    [missing] = firewall_member_problems(["a", "c", "d"], hostvars, "cluster")
    assert missing.startswith("members without a cluster_address fact: c, d; fix:")
    [no_claims] = firewall_member_problems(["a"], hostvars, "cluster", claims_known=False)
    assert no_claims.endswith("fix: run gymfleet.cluster.preflight first")
    # This host's own containers count even when it is no member; duplicates go.
    assert firewall_sources(["a", "b"], hostvars, "outside", ["10.0.0.1", "192.0.2.0/24"]) == [
        "10.0.0.1", "10.0.0.2", "172.18.9.0/24", "172.18.1.0/24", "192.0.2.0/24"]


def test_host_values_leave_out_hosts_without_the_variable():
    from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import host_values
    hostvars = {"a": {"x": "1"}, "b": {"x": None}, "c": {}, "d": {"x": ""}}
    assert host_values(["d", "a", "b", "c", "e"], hostvars, "x") == {"d": "", "a": "1"}


def test_address_interface_finds_the_interface_holding_the_address():
    from ansible_collections.gymfleet.cluster.plugins.filter.inventory_checks import address_interface
    facts = {"interfaces": ["lo", "eth0", "br-1"], "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}},
             "eth0": {"device": "eth0", "ipv4": {"address": "10.0.0.5"}},
             "br_1": {"device": "br-1", "ipv4": {"address": "172.18.0.1"}}}
    assert address_interface(facts, "10.0.0.5") == "eth0"
    assert address_interface(facts, "172.18.0.1") == "br-1"
    assert address_interface(facts, "10.9.9.9") == "" and address_interface({}, "") == ""


def test_omniboxes_flush_summary():
    from ansible_collections.gymfleet.cluster.plugins.filter.omniboxes import omniboxes_flush_summary
    registry = {"removed": ["omnibox:node1", "omnibox:node2"]}
    pool = {"before": {"available": [9000, 9001], "in_use": []}}
    assert omniboxes_flush_summary(registry, pool) == (
        "flushed: registry keys omnibox:node1, omnibox:node2; pool available=9000,9001 in_use=none")
    assert omniboxes_flush_summary(None, {"before": {}}, True) == "would flush: pool available=none in_use=none"
