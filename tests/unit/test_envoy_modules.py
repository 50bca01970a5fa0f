"""envoy_cluster_health and lb_distribution against a real Envoy in front of loopback backends."""

import json

import pytest
from ansible_collections.gymfleet.cluster.plugins.module_utils.envoy_admin import host_rows
from ansible_collections.gymfleet.cluster.plugins.modules import envoy_cluster_health, lb_distribution

from ..conftest import free_port
from .envoy_lab import Backend, envoy_lab, healthy_addresses, wait_for
from .modhelper import run_module


@pytest.fixture
def lab(tmp_path):
    with envoy_lab(tmp_path, backends=2) as running:
        yield running


def health(lab, **args):
    return run_module(envoy_cluster_health.main, {"admin_url": lab["admin_url"], "_ansible_check_mode": True,
                                                  "interval": 0.2, **args})


def distribution(lab, **args):
    return run_module(lb_distribution.main, {"url": lab["url"], "_ansible_check_mode": True, **args})


def test_every_backend_healthy(lab):
    expected = [b.address for b in lab["backends"]]
    result = health(lab, expected=expected)
    assert result.get("failed") is not True, result
    assert (result["healthy"], result["total"], result["unhealthy"], result["missing"]) == (2, 2, [], [])
    assert all(backend["healthy"] and backend["reasons"] == [] for backend in result["backends"])


def test_a_dead_backend_is_reported_with_envoys_reason_and_waited_for(lab):
    dead = lab["backends"][0]
    dead.close()
    wait_for(lambda: dead.address not in healthy_addresses(lab["admin"]), 5)
    result = health(lab)
    assert result["failed"] is True and result["healthy"] == 1
    assert f"unhealthy: {dead.address} (failed_active_health_check)" in result["msg"]
    lab["backends"][0] = Backend(dead.port)  # started again
    waited = health(lab, wait=True, timeout=5)
    assert waited.get("failed") is not True, waited
    assert waited["healthy"] == 2 and waited["waited"] < 5


def test_missing_backend_unknown_cluster_and_no_envoy(lab):
    result = health(lab, expected=["127.0.0.1:1"])
    assert result["failed"] is True and result["missing"] == ["127.0.0.1:1"] and "not in the cluster" in result["msg"]
    assert "Envoy has no cluster nope" in health(lab, cluster="nope")["msg"]
    down = run_module(envoy_cluster_health.main, {"admin_url": f"http://127.0.0.1:{free_port()}"})
    assert down["failed"] is True


@pytest.mark.parametrize("counted_by", ["admin", "header"])
def test_requests_reach_both_backends(lab, counted_by):
    admin = lab["admin_url"] if counted_by == "admin" else ""
    result = distribution(lab, requests=20, expected_hosts=2, admin_url=admin)
    assert result.get("failed") is not True, result
    assert result["counted_by"] == counted_by and result["distinct"] == 2 and result["sent"] == 20
    assert sorted(result["hosts"]) == sorted(b.address for b in lab["backends"])
    assert sum(result["hosts"].values()) == 20 and min(result["hosts"].values()) >= 9


def test_one_backend_serving_everything_fails_the_check(lab):
    dead = lab["backends"][0]
    dead.close()
    wait_for(lambda: dead.address not in healthy_addresses(lab["admin"]), 5)
    result = distribution(lab, requests=10, expected_hosts=2, admin_url=lab["admin_url"])
    assert result["failed"] is True and result["distinct"] == 1
    assert f"1 of 2 backends served the 10 requests ({lab['backends'][1].address}: 10; 0 failed)" in result["msg"]


def test_request_count_and_time_are_bounded(lab):
    assert "fix: send between 1 and 10000" in distribution(lab, requests=0, expected_hosts=1)["msg"]
    result = distribution(lab, requests=10000, delay=0.05, time_limit=0.5, expected_hosts=1)
    # 10000 requests 0.05 s apart would take 500 s: the time limit, not the count, ended the run.
    assert 0 < result["sent"] < 10000 and result["elapsed"] >= 0.5


def test_health_comes_from_envoys_flags_not_from_traffic():
    answer = {"cluster_statuses": [{"name": "openenv_cluster", "host_statuses": [
        {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8000}},
         "stats": [{"name": "rq_total", "value": "500"}, {"name": "rq_error"}],
         "health_status": {"eds_health_status": "HEALTHY", "failed_active_health_check": True}},
        {"address": {"socket_address": {"address": "10.0.0.3", "port_value": 8000}},
         "stats": [{"name": "rq_total", "value": "7"}],
         "health_status": {"eds_health_status": "DRAINING"}}]}]}
    rows = host_rows(json.loads(json.dumps(answer)), "openenv_cluster")
    assert rows[0] == {"address": "10.0.0.2:8000", "healthy": False, "reasons": ["failed_active_health_check"],
                       "requests": 500, "errors": 0, "active_requests": 0}
    assert rows[1]["healthy"] is False and rows[1]["reasons"] == ["eds_health_status=DRAINING"]
    assert host_rows(answer, "other") is None
