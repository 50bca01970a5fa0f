"""`ray start` command lines and their port claims, built from one dict so the two cannot drift apart."""

import pytest
from ansible_collections.gymfleet.cluster.plugins.filter.ports import port_conflicts
from ansible_collections.gymfleet.cluster.plugins.filter.ray import (
    ray_cluster_problems,
    ray_port_claims,
    ray_reported_versions,
    ray_start_argv,
    ray_version_mismatch,
)
from ansible_collections.gymfleet.cluster.plugins.filter.systemd import systemd_command_line

HEAD = {"role": "head", "ray": "/opt/ray/bin/ray", "node_ip": "10.0.0.1", "gcs_port": 6379, "dashboard_port": 8265,
        "dashboard_host": "10.0.0.1", "client_server_port": 10001, "node_manager_port": 6380,
        "object_manager_port": 6381, "min_worker_port": 10002, "max_worker_port": 10100, "num_cpus": 2,
        "num_gpus": 0, "resources": {"head": 1, "accel": 0.5}, "temp_dir": "/var/lib/ray"}
WORKER = {"role": "worker", "ray": "/opt/ray/bin/ray", "node_ip": "10.0.0.2", "head_address": "10.0.0.1:6379",
          "node_manager_port": 6380, "object_manager_port": 6381, "min_worker_port": 10002, "max_worker_port": 10100,
          "num_gpus": None}


def test_head_command_line():
    assert ray_start_argv(HEAD) == [
        "/opt/ray/bin/ray", "start", "--block", "--node-ip-address", "10.0.0.1", "--head",
        "--port", "6379", "--dashboard-port", "8265", "--ray-client-server-port", "10001",
        "--include-dashboard", "true", "--dashboard-host", "10.0.0.1",
        "--node-manager-port", "6380", "--object-manager-port", "6381",
        "--min-worker-port", "10002", "--max-worker-port", "10100", "--num-cpus", "2", "--num-gpus", "0",
        "--resources", '{"accel":0.5,"head":1}', "--temp-dir", "/var/lib/ray"]


def test_worker_command_line_leaves_unset_settings_to_ray():
    assert ray_start_argv(WORKER) == [
        "/opt/ray/bin/ray", "start", "--block", "--node-ip-address", "10.0.0.2", "--address", "10.0.0.1:6379",
        "--node-manager-port", "6380", "--object-manager-port", "6381",
        "--min-worker-port", "10002", "--max-worker-port", "10100"]


def test_every_port_on_the_command_line_is_claimed():
    claims = ray_port_claims(HEAD)
    argv = ray_start_argv(HEAD)
    claimed = {str(c["ports"]) for c in claims if isinstance(c["ports"], int)}
    passed = {argv[i + 1] for i, arg in enumerate(argv) if arg.endswith("-port") and arg != "--min-worker-port"
              and arg != "--max-worker-port"}
    assert claimed == passed
    assert {"component": "ray worker processes", "variable": "ray_min_worker_port..ray_max_worker_port",
            "ports": [10002, 10100]} in claims


def test_a_head_next_to_a_redis_on_its_gcs_port_is_a_conflict():
    redis = {"component": "redis instance", "variable": "redis_instances[0].port", "ports": 6379}
    assert port_conflicts(ray_port_claims(HEAD) + [redis]) == [
        "ray GCS (ray_gcs_port = 6379) overlaps redis instance (redis_instances[0].port = 6379)"]


def test_a_worker_claims_no_head_port():
    assert {c["component"] for c in ray_port_claims(WORKER)} == {
        "ray node manager", "ray object manager", "ray worker processes"}


def test_without_the_dashboard_its_port_is_neither_passed_nor_claimed():
    head = {**HEAD, "include_dashboard": False}
    argv = ray_start_argv(head)
    assert argv[argv.index("--include-dashboard") + 1] == "false"
    assert "--dashboard-port" not in argv and "--dashboard-host" not in argv
    assert "ray dashboard" not in {c["component"] for c in ray_port_claims(head)}


def test_role_must_be_head_or_worker():
    with pytest.raises(ValueError, match="role must be head or worker"):
        ray_start_argv({**HEAD, "role": "both"})


def test_object_store_memory_is_passed_in_bytes():
    argv = ray_start_argv({"role": "worker", "ray": "ray", "node_ip": "10.0.0.2", "head_address": "10.0.0.1:6379",
                           "object_store_memory": 2.5e8})
    assert argv[argv.index("--object-store-memory") + 1] == "250000000"


def test_reported_versions_come_from_each_nodes_engine_result():
    def laid_out(**versions):
        return {"__ray_laid_out": {"environments": [{"exists": True, "versions": versions}]}}

    hostvars = {"head": laid_out(ray="2.60.0", python="3.11.2"), "bare": laid_out(ray=None, python="3.11.2"),
                "new": {"__ray_laid_out": {"environments": [{"exists": False}]}}, "skipped": {}}
    assert ray_reported_versions(["head", "bare", "new", "skipped"], hostvars) == [
        {"host": "head", "ray": "2.60.0", "python": "3.11.2"}, {"host": "bare", "ray": "", "python": "3.11.2"}]


def test_version_mismatch_is_empty_when_all_agree():
    rows = [{"host": h, "ray": "2.60.0", "python": "3.11.2"} for h in ("a", "b", "c")]
    assert ray_version_mismatch(rows) == ""


def test_version_mismatch_marks_the_odd_nodes():
    table = ray_version_mismatch([
        {"host": "platinum", "ray": "2.60.0", "python": "3.11.2"},
        {"host": "nickel", "ray": "2.60.0", "python": "3.11.2"},
        {"host": "zinc", "ray": "2.60.0", "python": "3.11.9"},
        {"host": "iron", "ray": "2.59.0", "python": "3.11.2"},
        {"host": "copper", "ray": "", "python": ""},
    ]).splitlines()
    assert table[0].split() == ["HOST", "RAY", "PYTHON"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows["platinum"].split()[3:] == ["same"] and rows["nickel"].split()[3:] == ["same"]
    assert rows["zinc"].split()[1:] == ["2.60.0", "3.11.9", "<-", "differs"]
    assert rows["iron"].split()[1:3] == ["2.59.0", "3.11.2"] and "differs" in rows["iron"]
    assert rows["copper"].split()[1:] == ["missing", "missing", "<-", "differs"]


def test_version_mismatch_when_one_node_cannot_report():
    assert "missing" in ray_version_mismatch([{"host": "a", "ray": "", "python": ""}])


@pytest.mark.parametrize(("argv", "line"), [
    (["/opt/ray/bin/ray", "start", "--num-gpus", "1"], "/opt/ray/bin/ray start --num-gpus 1"),
    (["ray", "--resources", '{"titan_x":3}'], 'ray --resources "{\\"titan_x\\":3}"'),
    (["echo", "a b", "50%", "$HOME", "back\\slash"], 'echo "a b" "50%%" "$$HOME" "back\\\\slash"'),
])
def test_systemd_command_line_quotes_what_systemd_would_split(argv, line):
    assert systemd_command_line(argv) == line


def test_systemd_command_line_refuses_an_empty_argv():
    with pytest.raises(ValueError):
        systemd_command_line([])


RAY_HOST = {"is_head": True, "in_worker_group": False, "head_group": "ray_head", "worker_group": "ray_worker",
            "min_worker_port": 10002, "max_worker_port": 10999, "resources": {"accelerator": 1},
            "include_dashboard": True, "dashboard_host": ""}


def test_ray_host_problems_a_good_head_and_each_mistake():
    from ansible_collections.gymfleet.cluster.plugins.filter.ray import ray_host_problems

    assert ray_host_problems(RAY_HOST) == []
    cases = [({"in_worker_group": True}, "the host is in ray_head and in ray_worker"),
             ({"min_worker_port": 11000}, "ray_min_worker_port 11000 is above ray_max_worker_port 10999"),
             ({"resources": {"GPU": 1, "accelerator": 1}}, "ray_resources has the key GPU, which Ray reserves"),
             ({"dashboard_host": "127.0.0.1"}, "ray_dashboard_host is 127.0.0.1, which no other host reaches")]
    for change, words in cases:
        problems = ray_host_problems({**RAY_HOST, **change})
        assert len(problems) == 1 and words in problems[0] and "fix:" in problems[0], (change, problems)
    # A worker's dashboard host does not matter: only the head serves one.
    assert ray_host_problems({**RAY_HOST, "is_head": False, "dashboard_host": "localhost"}) == []
    # An INI inventory's ports are text; "9999" is below "10000" as a number, though not as text.
    assert ray_host_problems({**RAY_HOST, "min_worker_port": "9999", "max_worker_port": "10000"}) == []


def _entry(host, pin="ray[default]==2.60.0", auth_mode="token", token_digest="d1"):
    return {"host": host, "head": host == "n1", "pin": pin, "auth_mode": auth_mode, "token_digest": token_digest}


def test_a_sound_cluster_has_no_problem():
    assert ray_cluster_problems([_entry("n1"), _entry("n2")], ["n1"], "ray_head", "ray_worker") == []


def test_one_head_and_the_same_install_auth_and_token_everywhere():
    entries = [_entry("n1"), _entry("n2", pin="ray==2.59.0", auth_mode="none", token_digest="")]
    problems = ray_cluster_problems(entries, ["n1", "n3"], "ray_head", "ray_worker")
    assert problems == [
        "group ray_head has 2 hosts (n1, n3); fix: put exactly one host, the head, in it",
        "the nodes pin different Ray installs, and Ray needs one version on every node; fix: set ray_version and "
        "ray_extras once (group_vars) for all of them",
        "HOST  PIN\nn1    ray[default]==2.60.0\nn2    ray==2.59.0",
        "the nodes have different ray_auth_mode (n1=token, n2=none); fix: set it once for all of them",
        "the nodes have different ray_auth_token values (one cluster has one token); fix: set ray_auth_token once "
        "(group_vars, from a vault) or leave it empty everywhere",
    ]
    assert not any("d1" in problem for problem in problems), "a token's digest never reaches a message"


def test_workers_without_a_head():
    assert ray_cluster_problems([_entry("n2")], [], "heads", "workers") == [
        "group workers has hosts but heads is empty; fix: put one host, the head, in heads"]


def test_the_heads_metrics_exporters_are_set_and_claimed_from_the_same_settings():
    from ansible_collections.gymfleet.cluster.plugins.filter.ray import ray_port_claims, ray_start_environment
    head = {"role": "head", "ray": "/opt/ray/bin/ray", "auth_mode": "token", "auth_token_path": "/etc/ray/token",
            "autoscaler_metrics_port": 44217, "dashboard_metrics_port": "44227", "worker_liveness_check_interval": 5}
    assert ray_start_environment(head) == {
        "PATH": "/opt/ray/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": "/etc/ray/token", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "AUTOSCALER_METRIC_PORT": "44217", "DASHBOARD_METRIC_PORT": "44227"}
    claimed = {claim["variable"]: claim["ports"] for claim in ray_port_claims(head)}
    assert claimed == {"ray_autoscaler_metrics_port": 44217, "ray_dashboard_metrics_port": 44227}
    # No dashboard, no dashboard exporter; a worker runs neither and checks its own liveness instead.
    assert "DASHBOARD_METRIC_PORT" not in ray_start_environment({**head, "include_dashboard": False})
    worker = {**head, "role": "worker", "auth_mode": "disabled"}
    assert ray_start_environment(worker) == {
        "PATH": "/opt/ray/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "RAY_AUTH_MODE": "disabled", "RAY_raylet_liveness_self_check_interval_ms": "5000"}
    assert ray_port_claims(worker) == []
